package initproc

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"strata.dev/strata/internal/guest"
)

// stats answers what the running container c uses: for crun its cgroup
// (containerCgroup, which holds crun's "ctr" and so counts every process of
// the container), for runsc the sandbox's own accounting. A container that
// does not run answers no stats.
func (n *node) stats(c *container) (*guest.ContainerStats, error) {
	if state, _ := n.status(c); state != guest.StateRunning {
		return nil, nil
	}
	if c.runtime() == guest.RuntimeRunsc {
		out, code, err := n.tool(append(c.runtimeArgs(), "events", "--stats", c.runtimeID()))
		if err != nil {
			return nil, err
		}
		if code != 0 {
			return nil, fmt.Errorf("container %s: runsc events --stats: exit code %d: %s", c.id, code, strings.TrimSpace(out))
		}
		st, err := parseRunscStats(out)
		if err != nil {
			return nil, fmt.Errorf("container %s: %w", c.id, err)
		}
		return &st, nil
	}
	st, err := cgroupUsage(filepath.Join(cgroupRoot, containerCgroup(c.id)))
	if err != nil {
		return nil, fmt.Errorf("container %s: %w", c.id, err)
	}
	return &st, nil
}

// cgroupUsage reads a cgroup v2 directory's CPU time (cpu.stat's
// usage_usec, which the kernel keeps without the cpu controller) and
// memory in use (memory.current).
func cgroupUsage(dir string) (guest.ContainerStats, error) {
	stat, err := os.ReadFile(filepath.Join(dir, "cpu.stat"))
	if err != nil {
		return guest.ContainerStats{}, fmt.Errorf("cgroup CPU time: %w", err)
	}
	usec, ok := keyedValue(stat, "usage_usec")
	if !ok {
		return guest.ContainerStats{}, fmt.Errorf("cgroup CPU time: %s has no usage_usec line", filepath.Join(dir, "cpu.stat"))
	}
	cur, err := os.ReadFile(filepath.Join(dir, "memory.current"))
	if err != nil {
		return guest.ContainerStats{}, fmt.Errorf("cgroup memory: %w (is the memory controller enabled for it?)", err)
	}
	mem, err := strconv.ParseInt(string(bytes.TrimSpace(cur)), 10, 64)
	if err != nil {
		return guest.ContainerStats{}, fmt.Errorf("cgroup memory: %s: %w", filepath.Join(dir, "memory.current"), err)
	}
	return guest.ContainerStats{CPUSeconds: float64(usec) / 1e6, MemoryBytes: mem}, nil
}

// keyedValue is the number after key in a cgroup file of "KEY VALUE" lines.
func keyedValue(data []byte, key string) (uint64, bool) {
	for line := range bytes.Lines(data) {
		f := bytes.Fields(line)
		if len(f) == 2 && string(f[0]) == key {
			v, err := strconv.ParseUint(string(f[1]), 10, 64)
			return v, err == nil
		}
	}
	return 0, false
}

// runscEvent is the part of `runsc events --stats`' JSON line that stats
// reads: the container's CPU time in nanoseconds (the sentry's own
// accounting, scaled to the sandbox's cgroup) and the sandbox's memory usage in bytes (gVisor
// accounts memory per sandbox: with one container per sandbox, as here,
// it is the container's).
type runscEvent struct {
	Type string `json:"type"`
	Data struct {
		CPU struct {
			Usage struct {
				Total uint64 `json:"total"`
			} `json:"usage"`
		} `json:"cpu"`
		Memory struct {
			Usage struct {
				Usage uint64 `json:"usage"`
			} `json:"usage"`
		} `json:"memory"`
	} `json:"data"`
}

// parseRunscStats reads the stats event from the output of `runsc events
// --stats`, which may hold runsc's log lines besides it.
func parseRunscStats(out string) (guest.ContainerStats, error) {
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 64<<10), 64<<10)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if !bytes.HasPrefix(line, []byte("{")) {
			continue
		}
		var ev runscEvent
		if err := json.Unmarshal(line, &ev); err != nil || ev.Type != "stats" {
			continue
		}
		return guest.ContainerStats{CPUSeconds: float64(ev.Data.CPU.Usage.Total) / 1e9, MemoryBytes: int64(ev.Data.Memory.Usage.Usage)}, nil
	}
	return guest.ContainerStats{}, fmt.Errorf("runsc events --stats printed no stats event: %q", firstLine(out))
}

// firstLine is s up to its first newline, at most 200 bytes, for errors.
func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

// pause freezes the running container c (the runtime's pause; crun
// freezes its cgroup, runsc stops the sandbox's tasks) or, with resume,
// lets it run again. Pausing a paused container, or resuming one that
// runs, changes nothing.
func (n *node) pause(c *container, resume bool) error {
	op := "pause"
	if resume {
		op = "resume"
	}
	n.mu.Lock()
	state, paused := c.state, c.paused
	n.mu.Unlock()
	if state != guest.StateRunning {
		return fmt.Errorf("container %s is %s; only a running container can %s", c.id, state, op)
	}
	if paused == !resume {
		return nil
	}
	out, code, err := n.tool(append(c.runtimeArgs(), op, c.runtimeID()))
	if err != nil {
		return err
	}
	if code != 0 {
		if st, _ := n.status(c); st != guest.StateRunning {
			return fmt.Errorf("container %s is %s; only a running container can %s", c.id, st, op)
		}
		return fmt.Errorf("container %s: %s %s: exit code %d: %s", c.id, c.runtime(), op, code, strings.TrimSpace(out))
	}
	n.mu.Lock()
	c.paused = !resume
	n.mu.Unlock()
	return nil
}

// resumeForStop lets a paused container run again after stop sent its
// signal, so that it acts on it (a frozen process handles no signal).
func (n *node) resumeForStop(c *container) error {
	n.mu.Lock()
	paused := c.paused
	n.mu.Unlock()
	if !paused {
		return nil
	}
	return n.pause(c, true)
}
