package nodevm

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestConsoleTail: an error quotes the console's last lines without the
// terminal's control sequences, and the kernel's panic line before its
// stack trace.
func TestConsoleTail(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	booted := write("booted.log", "\x1bc\x1b[?7l\x1b[2J\x1b[0mSeaBIOS (version 1.16.2-debian-1.16.2-1)\r\n"+
		"Booting from ROM...\r\n\x1bc\x1b[?7l\x1b[2Jstrata-guest: starting on kernel 6.1.0-57-cloud-amd64\n"+
		"strata-guest: node agent ready\n")
	if got, want := consoleTail(booted, 3), `"Booting from ROM..." / "strata-guest: starting on kernel 6.1.0-57-cloud-amd64" / "strata-guest: node agent ready"`; got != want {
		t.Errorf("consoleTail of a boot:\n got %s\nwant %s", got, want)
	}
	var b strings.Builder
	b.WriteString("SeaBIOS (version 1.16.2-debian-1.16.2-1)\r\n")
	b.WriteString("[    1.502110] Kernel panic - not syncing: System is deadlocked on memory\n")
	b.WriteString("[    1.502110] CPU: 0 PID: 1 Comm: swapper/0 Not tainted 6.1.0-57-cloud-amd64 #1  Debian 6.1.158-1\n")
	b.WriteString("[    1.502110] Call Trace:\n[    1.502110]  <TASK>\n")
	for range 8 {
		b.WriteString("[    1.502110]  ? worker_thread+0x4d/0x380\n")
	}
	b.WriteString("[    1.502110]  </TASK>\n")
	got := consoleTail(write("panic.log", b.String()), 2)
	if want := `"[    1.502110] Kernel panic - not syncing: System is deadlocked on memory" / "..." / "[    1.502110]  ? worker_thread+0x4d/0x380" / "[    1.502110]  </TASK>"`; got != want {
		t.Errorf("consoleTail of a panic:\n got %s\nwant %s", got, want)
	}
	if got := consoleTail(write("empty.log", "\x1bc\r\n\n"), 3); got != "(nothing yet)" {
		t.Errorf("consoleTail of an empty console = %s", got)
	}
	if got := consoleTail(filepath.Join(dir, "absent.log"), 3); !strings.HasPrefix(got, "(unreadable: ") {
		t.Errorf("consoleTail of no file = %s", got)
	}
}
