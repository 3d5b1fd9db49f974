package rvtools

import (
	"os"
	"path/filepath"
	"testing"
)

func FuzzImport(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.csv")
	for _, path := range files {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		"", "VM\n", "\xef\xbb\xbfVM;CPUs\n;\n", "VM,CPUs\n\"a\nb\",1\n", "VM,Annotation\nx,strata.dev/trust=\n",
		"VM\tTemplate\nx\tTrue\n", "sep=;\nVM;Memory\nx;1,5\n", "VM,VM\n--,\n", "\n\n VM ,cpus\r\nA,2\r\nA,2\r\n",
		"\xff\xfeV\x00M\x00\t\x00P\x00a\x00t\x00h\x00\n\x00x\x00\t\x00[\x00", "\xfe\xff\x00V\x00M\x00,\x00C\x00P\x00U\x00s\xd8",
		"VM,Path,Firmware\nx,[ds] a/../../b.vmx,efi\ny,[ds] y/y.vmx,bios\n", "VM,Disk,Disk Path,Controller\nx,Hard disk 1,[ds] x/x.vmdk,IDE 0\n",
		"PK\x03\x04xl/workbook.xml",
	} {
		f.Add([]byte(s))
	}
	const file = "fuzz.csv"
	f.Fuzz(func(t *testing.T, data []byte) {
		set, errs := Import(file, data)
		checkInvariants(t, file, set.Items, set.Skipped, errs)
		Detect(data)
	})
}
