package rvtools

import (
	"bytes"
	"fmt"
	"testing"
)

// exportOf writes a vInfo export of n VMs, the same every time.
func exportOf(n int) []byte {
	oses := [][2]string{
		{"Microsoft Windows Server 2012 (64-bit)", "Microsoft Windows Server 2012 R2 Standard"},
		{"Microsoft Windows Server 2019 (64-bit)", "Microsoft Windows Server 2019 Datacenter"},
		{"CentOS 7 (64-bit)", "CentOS 7 (64-bit)"},
		{"Red Hat Enterprise Linux 8 (64-bit)", "Red Hat Enterprise Linux 8 (64-bit)"},
		{"Ubuntu Linux (64-bit)", "Ubuntu 22.04.3 LTS"},
		{"Debian GNU/Linux 11 (64-bit)", ""},
		{"SUSE Linux Enterprise 15 (64-bit)", "SUSE Linux Enterprise Server 15 SP4"},
	}
	powers := []string{"poweredOn", "poweredOn", "poweredOn", "poweredOff", "suspended"}
	var b bytes.Buffer
	b.WriteString("VM,Powerstate,Template,DNS Name,Connection state,CPUs,Memory,NICs,Disks,Primary IP Address," +
		"Resource pool,Folder,Provisioned MiB,In Use MiB,Annotation,Datacenter,Cluster,Host," +
		"OS according to the configuration file,OS according to the VMware Tools,VM ID\n")
	for i := range n {
		os := oses[i%len(oses)]
		annotation := ""
		if i%10 == 0 {
			annotation = `"owner: team-` + fmt.Sprint(i%7) + `, strata.dev/data: confidential"`
		}
		template := "False"
		if i%97 == 0 {
			template = "True"
		}
		fmt.Fprintf(&b, "App_Server %05d,%s,%s,app%d.corp.example,connected,%d,%d,1,%d,10.%d.%d.%d,Resources,Apps,%d,%d,%s,DC-%d,Cluster-%02d,esx%03d.corp.example,%s,%s,vm-%d\n",
			i%(n/2+1), powers[i%len(powers)], template, i, 1<<(i%4), 1024<<(i%6), 1+i%3, i/65536%256, i/256%256, i%256,
			40960+i%1000, 20480+i%777, annotation, i%3, i%20, i%300, os[0], os[1], 1000+i)
	}
	return b.Bytes()
}

func BenchmarkImport10k(b *testing.B) {
	data := exportOf(10000)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		set, errs := Import("bench.csv", data)
		if len(errs) > 0 || len(set.Items)+len(set.Skipped) != 10000 {
			b.Fatalf("%d items, %d skipped, errors: %v", len(set.Items), len(set.Skipped), errs.Err())
		}
	}
}
