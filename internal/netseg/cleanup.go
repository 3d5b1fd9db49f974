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
// namespace files under NetNSDir, and veths and taps named with
// BridgePrefix in the host namespace. Bridges stay (DeleteSegment removes them). keep runs
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
	kept := map[string]bool{} // host veths and taps
	for _, r := range m.attachments {
		if r.Kind == KindTap {
			kept[r.Tap] = true
			continue
		}
		netnsFiles[r.NetNS] = true
		kept[r.HostVeth] = true
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
		name, kind := l.Attrs().Name, l.Type()
		if (kind != "veth" && kind != tapType) || !strings.HasPrefix(name, m.opts.BridgePrefix) || kept[name] {
			continue
		}
		if kind == tapType {
			kind = "tap"
		}
		if err := h.LinkDel(l); err != nil && !isLinkNotFound(err) {
			errs = append(errs, fmt.Errorf("delete orphan %s %s: %w", kind, name, err))
			continue
		}
		m.log.Info("orphan removed", kind, name)
	}
	if err := m.syncGuard(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
