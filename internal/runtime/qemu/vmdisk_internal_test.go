package qemu

import (
	"slices"
	"strings"
	"testing"
)

// TestReadProgress reads qemu-img's -p output, which ends its lines in carriage returns.
func TestReadProgress(t *testing.T) {
	var got []int
	readProgress(strings.NewReader("    (0.00/100%)\r    (1.01/100%)\r    (47.50/100%)\rjunk\r(x/100%)\r    (100.00/100%)\n"),
		func(p int) { got = append(got, p) })
	if want := []int{0, 1, 47, 100}; !slices.Equal(got, want) {
		t.Errorf("progress %v, want %v", got, want)
	}
}

func TestOVFBootDisk(t *testing.T) {
	const head = `<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1">`
	for _, tt := range []struct{ name, body, want, err string }{
		{"first disk", `<References><File ovf:href="b.vmdk" ovf:id="f2"/><File ovf:href="a.vmdk" ovf:id="f1"/></References>` +
			`<DiskSection><Disk ovf:fileRef="f1"/><Disk ovf:fileRef="f2"/></DiskSection>`, "a.vmdk", ""},
		{"no disk", `<References><File ovf:href="a.vmdk" ovf:id="f1"/></References>`, "", "declares no disk"},
		{"path in href", `<References><File ovf:href="../a.vmdk" ovf:id="f1"/></References><DiskSection><Disk ovf:fileRef="f1"/></DiskSection>`, "", "not a file name"},
		{"iso", `<References><File ovf:href="a.iso" ovf:id="f1"/></References><DiskSection><Disk ovf:fileRef="f1"/></DiskSection>`, "", "not a VMDK"},
		{"dangling ref", `<DiskSection><Disk ovf:fileRef="f9"/></DiskSection>`, "", "does not list"},
		{"not XML", `<References`, "", "read the OVF descriptor"},
	} {
		got, err := ovfBootDisk([]byte(head + tt.body + `</Envelope>`))
		if got != tt.want || (err == nil) != (tt.err == "") || err != nil && !strings.Contains(err.Error(), tt.err) {
			t.Errorf("%s: %q, %v; want %q, %q", tt.name, got, err, tt.want, tt.err)
		}
	}
}
