package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/orphand/orphand/internal/testutil"
)

// completionScript generates the script for shell and checks that it says
// what every script must offer.
func completionScript(t *testing.T, shell string, want ...string) string {
	t.Helper()
	stdout, stderr, code := runCLI(t, "completion", shell)
	if code != exitOK {
		t.Fatalf("completion %s: exit %d: %s", shell, code, stderr)
	}
	for _, w := range append(want, "allow-unprotected", "ls -q", "bash zsh fish") {
		if !strings.Contains(stdout, w) {
			t.Errorf("the %s completion script lacks %q", shell, w)
		}
	}
	return stdout
}

func TestCompletionScriptIsValidBash(t *testing.T) {
	bash := testutil.RequireCommand(t, "bash")
	stdout := completionScript(t, "bash", "complete -F _orphanctl orphanctl", "kill) flags=")
	cmd := exec.CommandContext(context.Background(), bash, "-n")
	cmd.Stdin = strings.NewReader(stdout)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("bash -n: %v\n%s", err, out)
	}
}

// TestZshCompletionLoads loads the script both ways zsh users do — from
// $fpath as _orphanctl, and sourced after compinit — and completes a few
// lines with compadd and _describe stubbed to print what they are given.
func TestZshCompletionLoads(t *testing.T) {
	zsh := testutil.RequireCommand(t, "zsh")
	script := completionScript(t, "zsh", "#compdef orphanctl", "kill) flags=(")
	dir := t.TempDir()
	file := filepath.Join(dir, "_orphanctl")
	if err := os.WriteFile(file, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(prog string) string {
		t.Helper()
		cmd := exec.CommandContext(context.Background(), zsh, "-f", "-c", prog)
		cmd.Env = append(os.Environ(), "HOME="+dir, "ZDOTDIR="+dir)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("zsh: %v\n%s", err, out)
		}
		return string(out)
	}
	if out := run("zsh -n " + file + " && print ok"); strings.TrimSpace(out) != "ok" {
		t.Fatalf("zsh -n: %s", out)
	}
	const stubs = `compadd() { print -r -- "compadd $*" }
_describe() { print -r -- "describe ${(P)${@[-1]}}" }
`
	complete := `words=(orphanctl kill --gr); CURRENT=3; _orphanctl
words=(orphanctl sta); CURRENT=2; _orphanctl
words=(orphanctl completion ""); CURRENT=3; _orphanctl
words=(orphanctl register --signal ""); CURRENT=4; _orphanctl
`
	for name, load := range map[string]string{
		"fpath":  "fpath=(" + dir + " $fpath); autoload -Uz compinit; compinit -u -D -d " + dir + "/zcd\n",
		"source": "autoload -Uz compinit; compinit -u -D -d " + dir + "/zcd; source " + file + "\n",
	} {
		out := run(load + "print -r -- \"registered $_comps[orphanctl]\"\n" + stubs + complete)
		for _, want := range []string{
			"registered _orphanctl", "compadd -- --grace --json --socket", "status:show the agent's health",
			"compadd -- bash zsh fish", "compadd -- TERM INT",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("%s: zsh printed no %q:\n%s", name, want, out)
			}
		}
	}
}

// TestFishCompletionLoads loads the script into fish and completes a few
// lines with complete -C, as fish does when the user presses tab.
func TestFishCompletionLoads(t *testing.T) {
	fish := testutil.RequireCommand(t, "fish")
	script := completionScript(t, "fish", "complete -c orphanctl", "__orphanctl_groups")
	dir := t.TempDir()
	file := filepath.Join(dir, "orphanctl.fish")
	if err := os.WriteFile(file, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	for line, want := range map[string]string{
		"orphanctl sta":                "status\tshow the agent's health",
		"orphanctl kill --gr":          "--grace\t",
		"orphanctl completion ":        "zsh",
		"orphanctl register --signal ": "TERM",
		"orphanctl ls -":               "--quiet\t",
		"orphanctl --socket /x sh":     "show\t",
	} {
		cmd := exec.CommandContext(context.Background(), fish, "--no-config", "-c",
			"source "+file+"; and complete -C '"+line+"'")
		cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_CONFIG_HOME="+dir, "XDG_DATA_HOME="+dir)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("fish: %v\n%s", err, out)
		}
		if !strings.Contains(string(out), want) {
			t.Errorf("completing %q gave %q, want %q among it", line, out, want)
		}
	}
	if out, err := exec.CommandContext(context.Background(), fish, "--no-execute", file).CombinedOutput(); err != nil {
		t.Errorf("fish --no-execute: %v\n%s", err, out)
	}
}
