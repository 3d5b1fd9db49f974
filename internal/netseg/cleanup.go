package netseg

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Cleanup detaches every attached instance for which keep returns false,
// then removes what the manager owns but no attachment accounts for:
// namespace files under NetNSDir and veths named with BridgePrefix in the
// host namespace. Bridges stay (DeleteSegment removes them). keep runs
// while the Manager is locked and must not call it. Cleanup goes on past
// failures and returns them all.
func (m *Manager) Cleanup(ctx context.Context, keep func(instanceID string) bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	h, err := m.opts.Host.Netlink()
	if err != nil {
		return err
	}
	defer h.Close()

	var errs []error
	ids := make([]string, 0, len(m.attachments))
	for id := range m.attachments {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return errors.Join(append(errs, err)...)
		}
		if keep(id) {
			continue
		}
		if err := m.detach(h, m.attachments[id]); err != nil {
			errs = append(errs, err)
		}
	}

	netnsFiles := map[string]bool{}
	veths := map[string]bool{}
	for _, r := range m.attachments {
		netnsFiles[r.NetNS] = true
		veths[r.HostVeth] = true
	}
	entries, err := os.ReadDir(m.opts.NetNSDir)
	if err != nil {
		errs = append(errs, fmt.Errorf("network namespace dir: %w", err))
	}
	for _, e := range entries {
		path := filepath.Join(m.opts.NetNSDir, e.Name())
		if netnsFiles[path] || e.IsDir() {
			continue
		}
		if err := removeNetNS(path); err != nil {
			errs = append(errs, err)
			continue
		}
		m.log.Info("orphan removed", "netns", path)
	}
	links, err := linkList(h)
	if err != nil {
		errs = append(errs, err)
	}
	for _, l := range links {
		name := l.Attrs().Name
		if l.Type() != "veth" || !strings.HasPrefix(name, m.opts.BridgePrefix) || veths[name] {
			continue
		}
		if err := h.LinkDel(l); err != nil && !isLinkNotFound(err) {
			errs = append(errs, fmt.Errorf("delete orphan veth %s: %w", name, err))
			continue
		}
		m.log.Info("orphan removed", "veth", name)
	}
	return errors.Join(errs...)
}
