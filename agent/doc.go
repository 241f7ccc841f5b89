// Package agent is the orphand agent: it serves protocol v1 (package ipc)
// on a Unix socket, keeps a registry of groups, watches every spawner
// through its pidfd and kills a group the moment its trigger fires.
package agent
