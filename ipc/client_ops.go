package ipc

import (
	"context"
	"fmt"
	"time"
)

// AgentInfo is the agent's answer to hello.
type AgentInfo struct {
	Version  int      // protocol version the agent speaks
	Agent    string   // the agent's version string
	Backend  string   // "cgroupfs", "systemd" or "proc"
	Features []string // kernel and backend features found
	// Mode is ModeSystem or ModeUser (a per-user agent); "" from an
	// agent older than per-user agents: a system agent.
	Mode string
	// Limitations says what the backend cannot promise (the proc
	// backend); empty for the cgroup backends.
	Limitations []string
}

// RegisterOptions describes a subtree group to register.
type RegisterOptions struct {
	// Pid is the spawner; 0 means the calling process (the connection's
	// peer, as the agent sees it).
	Pid  int
	Name string
	// Grace is the time between the polite signal and SIGKILL; nil means
	// the agent's default, a zero duration means SIGKILL at once.
	Grace *time.Duration
	// Signal is the polite signal ("SIGTERM", "TERM", "15"); "" means the
	// agent's default.
	Signal string
	// On is the trigger: [OnExit] (the default) or [OnDisconnect].
	On string
	// Parent optionally names the group to nest the new one under; by
	// default the agent nests it under the group the spawner is already in.
	Parent string
}

// WatchOptions describes a watch group: when Pid exits, the processes in
// Kill are killed. They are held by pidfd from the moment the agent accepts
// the request, so a target whose pid is later reused is never hit.
type WatchOptions struct {
	Pid    int
	Kill   []int
	Name   string
	Grace  *time.Duration // as in RegisterOptions
	Signal string
	On     string // as in RegisterOptions
}

// graceMS converts a grace to the protocol's milliseconds, rounding a
// positive fraction of a millisecond up so that a grace asked for is kept.
func graceMS(g *time.Duration) (*int64, error) {
	if g == nil {
		return nil, nil
	}
	if *g < 0 {
		return nil, fmt.Errorf("grace %v is negative", *g)
	}
	ms := int64((*g + time.Millisecond - 1) / time.Millisecond)
	return &ms, nil
}

// Hello checks that the agent speaks protocol v1 and tells what it is.
func (c *Client) Hello(ctx context.Context) (*AgentInfo, error) {
	resp, err := c.Do(ctx, Request{Op: OpHello, Version: Version})
	if err != nil {
		return nil, err
	}
	return &AgentInfo{
		Version: resp.Version, Agent: resp.Agent, Backend: resp.Backend, Features: resp.Features,
		Mode: resp.Mode, Limitations: resp.Limitations,
	}, nil
}

// Register makes a subtree group of the spawner and all its descendants.
func (c *Client) Register(ctx context.Context, opts RegisterOptions) (*Group, error) {
	grace, err := graceMS(opts.Grace)
	if err != nil {
		return nil, fmt.Errorf("register: %w", err)
	}
	resp, err := c.Do(ctx, Request{
		Op: OpRegister, Pid: opts.Pid, Name: opts.Name, GraceMS: grace,
		Signal: opts.Signal, On: opts.On, Parent: opts.Parent,
	})
	if err != nil {
		return nil, err
	}
	return groupOf(resp)
}

// Watch makes a watch group (the old orphand's "kill these when that one
// dies").
func (c *Client) Watch(ctx context.Context, opts WatchOptions) (*Group, error) {
	grace, err := graceMS(opts.Grace)
	if err != nil {
		return nil, fmt.Errorf("watch: %w", err)
	}
	resp, err := c.Do(ctx, Request{
		Op: OpWatch, Pid: opts.Pid, Kill: opts.Kill, Name: opts.Name, GraceMS: grace, Signal: opts.Signal, On: opts.On,
	})
	if err != nil {
		return nil, err
	}
	return groupOf(resp)
}

// Attach moves pid (and, with it, everything it forks from then on) into a
// subtree group.
func (c *Client) Attach(ctx context.Context, group string, pid int) error {
	_, err := c.Do(ctx, Request{Op: OpAttach, Group: group, Pid: pid})
	return err
}

// List returns the groups the caller may see (root sees all), including
// recently dead ones.
func (c *Client) List(ctx context.Context) ([]Group, error) {
	resp, err := c.Do(ctx, Request{Op: OpList})
	if err != nil {
		return nil, err
	}
	return resp.Groups, nil
}

// Show returns one group and the pids of its live members.
func (c *Client) Show(ctx context.Context, group string) (*Group, []int, error) {
	resp, err := c.Do(ctx, Request{Op: OpShow, Group: group})
	if err != nil {
		return nil, nil, err
	}
	g, err := groupOf(resp)
	if err != nil {
		return nil, nil, err
	}
	return g, resp.Members, nil
}

// Kill kills a group now and returns, once it is empty, how many processes
// it killed. grace is as in [RegisterOptions]; nil keeps the group's own.
func (c *Client) Kill(ctx context.Context, group string, grace *time.Duration) (int, error) {
	ms, err := graceMS(grace)
	if err != nil {
		return 0, fmt.Errorf("kill: %w", err)
	}
	resp, err := c.Do(ctx, Request{Op: OpKill, Group: group, GraceMS: ms})
	if err != nil {
		return 0, err
	}
	if resp.Killed == nil {
		return 0, fmt.Errorf("kill: agent's response has no killed count")
	}
	return *resp.Killed, nil
}

// Release stops watching a group; its processes are left alone.
func (c *Client) Release(ctx context.Context, group string) error {
	_, err := c.Do(ctx, Request{Op: OpRelease, Group: group})
	return err
}

// Status returns the agent's health report.
func (c *Client) Status(ctx context.Context) (*Status, error) {
	resp, err := c.Do(ctx, Request{Op: OpStatus})
	if err != nil {
		return nil, err
	}
	if resp.Status == nil {
		return nil, fmt.Errorf("status: agent's response has no status")
	}
	return resp.Status, nil
}

func groupOf(resp *Response) (*Group, error) {
	if resp.Group == nil {
		return nil, fmt.Errorf("agent's response has no group")
	}
	return resp.Group, nil
}
