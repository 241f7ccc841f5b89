package proctree

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"
)

func TestParseStatusUIDs(t *testing.T) {
	in := "Name:\tsleep\nUmask:\t0022\nState:\tS (sleeping)\nUid:\t1000\t1001\t1002\t1003\nGid:\t0\t0\t0\t0\n"
	st, err := ParseStatus(strings.NewReader(in))
	if err == nil {
		err = st.Need(StatusUID)
	}
	if err != nil || st.UID != (IDs{1000, 1001, 1002, 1003}) {
		t.Fatalf("%+v %v", st.UID, err)
	}
	for _, bad := range []string{"", "Uid:\t1 2 3\n", "Uid:\t1 2 3 x\n", "Uid:\t-1 0 0 0\n", "Uid:\t4294967296 0 0 0\n"} {
		st, err := ParseStatus(strings.NewReader(bad))
		if err == nil {
			err = st.Need(StatusUID)
		}
		if !errors.Is(err, ErrBadStatus) {
			t.Errorf("%q: %v, want ErrBadStatus", bad, err)
		}
	}
}

func TestParseStatusNSpid(t *testing.T) {
	for in, want := range map[string]int{
		"Name:\tsh\nNSpid:\t42\n":       1,
		"NSpid:\t4242\t17\t1\nUid: 0\n": 3,
	} {
		st, err := ParseStatus(strings.NewReader(in))
		if err == nil {
			err = st.Need(StatusNSpid)
		}
		if err != nil || len(st.NSpid) != want {
			t.Errorf("ParseStatus(%q): NSpid %v, %v; want %d levels", in, st.NSpid, err, want)
		}
	}
	for _, in := range []string{"", "NSpid:\n", "NSpid:\t1 x\n", "Pid:\t1\n"} {
		st, err := ParseStatus(strings.NewReader(in))
		if err == nil {
			err = st.Need(StatusNSpid)
		}
		if !errors.Is(err, ErrBadStatus) {
			t.Errorf("ParseStatus(%q): NSpid %v, %v; want ErrBadStatus", in, st.NSpid, err)
		}
	}
}

// TestReadStatus reads this process's own status, by pid and as pid 0.
func TestReadStatus(t *testing.T) {
	for _, pid := range []int{0, os.Getpid()} {
		st, err := ReadStatus(pid)
		if err == nil {
			err = st.Need(StatusUID | StatusGID | StatusCapPrm | StatusNSpid)
		}
		if err != nil {
			t.Fatalf("ReadStatus(%d): %v", pid, err)
		}
		if st.UID.Real != uint32(os.Getuid()) || st.NSpid[len(st.NSpid)-1] <= 0 {
			t.Errorf("ReadStatus(%d) = %+v", pid, st)
		}
	}
}

func FuzzParseStatus(f *testing.F) {
	f.Add([]byte(statusSample))
	f.Add([]byte("Uid:\t0\t0\t0\t0\n"))
	f.Add([]byte("Name:\tx\nUid: 1 2 3 4\n"))
	f.Add([]byte("NSpid:\t12\t1\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		st, err := ParseStatus(bytes.NewReader(in))
		if err != nil {
			if !errors.Is(err, ErrBadStatus) {
				t.Fatalf("error %v does not wrap ErrBadStatus", err)
			}
			return
		}
		if st.Need(StatusNSpid) == nil && len(st.NSpid) < 1 {
			t.Fatalf("NSpid %v: no levels without an error", st.NSpid)
		}
	})
}

// TestBootID: the boot id reads, and is the same at every read.
func TestBootID(t *testing.T) {
	id := BootID()
	if len(id) != 36 || BootID() != id {
		t.Fatalf("BootID() = %q, then %q; want one 36-character uuid", id, BootID())
	}
}
