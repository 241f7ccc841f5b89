package systemd

import (
	"strings"
)

// rootSlice is the slice at the top of systemd's tree.
const rootSlice = "-.slice"

// placement reads a cgroup path the way systemd lays cgroups out
// ("/a.slice/a-b.slice/foo.service/whatever") and returns the innermost
// slice ("a-b.slice"; "-.slice" when the path starts with no slice) and the
// unit the path belongs to ("foo.service"; "" for a path that is only
// slices or the root). A delegated unit may have its own sub-cgroups below
// the unit's directory; they belong to the unit.
func placement(cgroupPath string) (slice, unit string) {
	slice = rootSlice
	for _, c := range strings.Split(strings.Trim(cgroupPath, "/"), "/") {
		if c == "" {
			break
		}
		name := unescape(c)
		if strings.HasSuffix(name, ".slice") {
			slice = name
			continue
		}
		return slice, name
	}
	return slice, ""
}

// placementUnder is placement for a service manager whose subtree is the
// cgroup manager ("" or "/" for the system manager, whose subtree is the
// whole tree; "/user.slice/user-1000.slice/user@1000.service" for a user
// manager): the slice and unit are read from the path below manager, as
// that manager names its units. A path outside the manager's subtree (a
// process in an ssh session's scope, seen by a user manager) has no slice
// or unit of that manager: inside is false, and the scope goes to the
// manager's default slice, bound to nothing.
func placementUnder(manager, cgroupPath string) (slice, unit string, inside bool) {
	manager = strings.TrimSuffix(manager, "/")
	if manager == "" {
		slice, unit = placement(cgroupPath)
		return slice, unit, true
	}
	rest, ok := strings.CutPrefix(cgroupPath, manager)
	if !ok || rest != "" && !strings.HasPrefix(rest, "/") {
		return "", "", false
	}
	slice, unit = placement(rest)
	return slice, unit, true
}

// unescape undoes systemd's cg_escape(): names that could clash with the
// kernel's own files ("cgroup.*", "cpu.*", names starting with "_" or ".")
// get a "_" prepended in the cgroup tree.
func unescape(c string) string {
	if strings.HasPrefix(c, "_") {
		return c[1:]
	}
	return c
}

// unitName is the scope unit of the group id.
func unitName(id string) string { return "orphand-" + id + ".scope" }

// idOf returns the group id of an orphand scope unit name, or "".
func idOf(unit string) string {
	id, ok := strings.CutPrefix(unit, "orphand-")
	if !ok {
		return ""
	}
	id, ok = strings.CutSuffix(id, ".scope")
	if !ok {
		return ""
	}
	return id
}
