package profiler

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Lines of /proc/self/mountinfo.
const (
	rootMount   = "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
	cgroup2Host = "30 22 0:27 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n"
	// A hybrid host: v1 hierarchies with v2 beside them, for systemd.
	cgroupHybrid = "30 22 0:26 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755\n" +
		"31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate\n" +
		"32 30 0:28 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,cpu,cpuacct\n" +
		"34 30 0:30 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:13 - cgroup cgroup rw,memory\n"
)

// v2statWith returns a v2 memory.stat (as Linux 6.8 writes it, in part)
// with inactive_file set.
func v2statWith(inactiveFile uint64) string {
	return fmt.Sprintf(`anon 212992000
file 1519616000
kernel 25583616
kernel_stack 1179648
pagetables 1966080
sec_pagetables 0
percpu 2640
sock 4096
vmalloc 8192
shmem 135168
zswap 0
zswapped 0
file_mapped 98304000
file_dirty 0
file_writeback 0
swapcached 0
anon_thp 0
file_thp 0
shmem_thp 0
inactive_anon 209715200
active_anon 3276800
inactive_file %d
active_file 519616000
unevictable 0
slab_reclaimable 20971520
slab_unreclaimable 1413120
slab 22384640
workingset_refault_anon 0
workingset_refault_file 12
pgfault 2040311
pgmajfault 59
thp_fault_alloc 0
`, inactiveFile)
}

// v1statWith returns a v1 memory.stat with total_inactive_file set, and
// hierarchical_memory_limit unless it is "".
func v1statWith(totalInactiveFile uint64, hierLimit string) string {
	s := `cache 1519616000
rss 212992000
rss_huge 0
shmem 135168
mapped_file 98304000
inactive_anon 209715200
active_anon 3276800
inactive_file 4096
active_file 519616000
unevictable 0
`
	if hierLimit != "" {
		s += "hierarchical_memory_limit " + hierLimit + "\nhierarchical_memsw_limit 9223372036854771712\n"
	}
	return s + fmt.Sprintf(`total_cache 1519616000
total_rss 212992000
total_inactive_anon 209715200
total_active_anon 3276800
total_inactive_file %d
total_active_file 519616000
total_unevictable 0
`, totalInactiveFile)
}

// fakeTree is a fake root holding /proc and /sys files.
type fakeTree struct {
	t    testing.TB
	root string
}

func newFakeTree(t testing.TB, files map[string]string) *fakeTree {
	ft := &fakeTree{t: t, root: t.TempDir()}
	for name, text := range files {
		ft.write(name, text)
	}
	return ft
}

// write writes the file named by its absolute path in the fake tree.
func (ft *fakeTree) write(name, text string) {
	ft.t.Helper()
	p := filepath.Join(ft.root, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		ft.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		ft.t.Fatal(err)
	}
}

// v2leaf is the cgroup of a container of a Kubernetes pod, under the
// cgroup2 mount of a host without cgroup namespaces.
const (
	v2pods  = "/sys/fs/cgroup/kubepods.slice"
	v2pod   = v2pods + "/kubepods-burstable.slice/kubepods-burstable-pod1.slice"
	v2leaf  = v2pod + "/cri-containerd-abc.scope"
	v2proc  = "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice/cri-containerd-abc.scope\n"
	v2burst = v2pods + "/kubepods-burstable.slice"
)

// v2files returns the files of a process in v2leaf with the given
// memory.max of the leaf, the pod, and the pods' slice.
func v2files(leafMax, podMax, podsMax string) map[string]string {
	return map[string]string{
		"/proc/self/cgroup":            v2proc,
		"/proc/self/mountinfo":         rootMount + cgroup2Host,
		"/sys/fs/cgroup/memory.stat":   v2statWith(1), // the host's root: no memory.current, no memory.max
		v2pods + "/memory.max":         podsMax,
		v2burst + "/memory.max":        "max\n",
		v2pod + "/memory.max":          podMax,
		v2leaf + "/memory.max":         leafMax,
		v2leaf + "/memory.current":     "500000000\n",
		v2leaf + "/memory.stat":        v2statWith(123456789),
		v2leaf + "/memory.high":        "1000\n", // not a kill limit
		v2leaf + "/cgroup.controllers": "cpu io memory pids\n",
	}
}

// v1files returns the files of a process in a Docker container's memory
// cgroup v1, without a cgroup namespace.
func v1files(limitInBytes, hierLimit string) map[string]string {
	return map[string]string{
		"/proc/self/cgroup": "12:pids:/docker/abc\n11:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n1:name=systemd:/docker/abc\n",
		"/proc/self/mountinfo": rootMount +
			"30 22 0:26 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755\n" +
			"34 30 0:30 /docker/abc /sys/fs/cgroup/memory ro,nosuid,nodev,noexec,relatime master:13 - cgroup cgroup rw,memory\n",
		"/sys/fs/cgroup/memory/memory.usage_in_bytes": "500000000\n",
		"/sys/fs/cgroup/memory/memory.limit_in_bytes": limitInBytes,
		"/sys/fs/cgroup/memory/memory.stat":           v1statWith(123456789, hierLimit),
	}
}

// with returns files with changes; an empty value removes a file.
func with(files map[string]string, changes map[string]string) map[string]string {
	out := make(map[string]string)
	for k, v := range files {
		out[k] = v
	}
	for k, v := range changes {
		if v == "" {
			delete(out, k)
		} else {
			out[k] = v
		}
	}
	return out
}

func TestCgroupFakeTrees(t *testing.T) {
	const usage = 500000000 - 123456789
	tests := []struct {
		name      string
		files     map[string]string
		dirs      []string // made directories, which no one can read as files, root included
		wantUsage uint64
		wantLimit uint64
		wantErr   string // in cgroupErr; "" for none
	}{
		{
			name:      "v2 limit on the cgroup",
			files:     v2files("1073741824\n", "max\n", "max\n"),
			wantUsage: usage, wantLimit: 1073741824,
		},
		{
			name:      "v2 limit on an ancestor",
			files:     v2files("max\n", "2147483648\n", "8589934592\n"),
			wantUsage: usage, wantLimit: 2147483648,
		},
		{
			name:      "v2 lowest limit wins",
			files:     v2files("4294967296\n", "2147483648\n", "8589934592\n"),
			wantUsage: usage, wantLimit: 2147483648,
		},
		{
			name:      "v2 no limit",
			files:     v2files("max\n", "max\n", "max\n"),
			wantUsage: usage, wantLimit: 0,
		},
		{
			name: "v2 ancestor without memory controller",
			files: with(v2files("1073741824\n", "max\n", "max\n"), map[string]string{
				v2pods + "/memory.max": "",
			}),
			wantUsage: usage, wantLimit: 1073741824,
		},
		{
			name: "v2 cgroup namespace",
			files: map[string]string{
				"/proc/self/cgroup":                 "0::/\n",
				"/proc/self/mountinfo":              rootMount + "40 22 0:35 / /sys/fs/cgroup ro,nosuid,nodev,noexec,relatime - cgroup2 cgroup rw,nsdelegate\n",
				"/sys/fs/cgroup/memory.current":     "500000000\n",
				"/sys/fs/cgroup/memory.stat":        v2statWith(123456789),
				"/sys/fs/cgroup/memory.max":         "268435456\n",
				"/sys/fs/cgroup/cgroup.controllers": "memory\n",
			},
			wantUsage: usage, wantLimit: 268435456,
		},
		{
			name: "v2 escaped mount point",
			files: map[string]string{
				"/proc/self/cgroup":           "0::/a b\n",
				"/proc/self/mountinfo":        rootMount + `40 22 0:35 / /cg\040root rw - cgroup2 cgroup2 rw` + "\n",
				"/cg root/a b/memory.current": "500000000\n",
				"/cg root/a b/memory.stat":    v2statWith(123456789),
				"/cg root/a b/memory.max":     "1000000000\n",
			},
			wantUsage: usage, wantLimit: 1000000000,
		},
		{
			name: "v2 inactive file above the charge",
			files: with(v2files("1073741824\n", "max\n", "max\n"), map[string]string{
				v2leaf + "/memory.current": "1000\n",
			}),
			wantUsage: 0, wantLimit: 1073741824,
		},
		{
			name:      "v1 hierarchical limit",
			files:     v1files("1073741824\n", "536870912"),
			wantUsage: usage, wantLimit: 536870912,
		},
		{
			name:      "v1 own limit",
			files:     v1files("1073741824\n", ""),
			wantUsage: usage, wantLimit: 1073741824,
		},
		{
			name:      "v1 unlimited",
			files:     v1files("9223372036854771712\n", "9223372036854771712"),
			wantUsage: usage, wantLimit: 0,
		},
		{
			name:      "v1 unlimited with 64 KiB pages",
			files:     v1files("9223372036854710272\n", ""),
			wantUsage: usage, wantLimit: 0,
		},
		{
			name: "v1 hybrid host",
			files: map[string]string{
				"/proc/self/cgroup":                                         "9:name=systemd:/\n4:memory:/process_api/x\n1:cpu,cpuacct:/\n0::/\n",
				"/proc/self/mountinfo":                                      rootMount + cgroupHybrid,
				"/sys/fs/cgroup/unified/cgroup.procs":                       "1\n",
				"/sys/fs/cgroup/memory/process_api/x/memory.usage_in_bytes": "500000000\n",
				"/sys/fs/cgroup/memory/process_api/x/memory.limit_in_bytes": "9223372036854771712\n",
				"/sys/fs/cgroup/memory/process_api/x/memory.stat":           v1statWith(123456789, "2147483648"),
			},
			wantUsage: usage, wantLimit: 2147483648,
		},
		{
			name: "v1 memory with another controller",
			files: map[string]string{
				"/proc/self/cgroup":           "3:cpu,memory:/x\n",
				"/proc/self/mountinfo":        rootMount + "34 22 0:30 / /cg rw - cgroup cgroup rw,cpu,memory\n",
				"/cg/x/memory.usage_in_bytes": "500000000\n",
				"/cg/x/memory.limit_in_bytes": "1073741824\n",
				"/cg/x/memory.stat":           v1statWith(123456789, ""),
			},
			wantUsage: usage, wantLimit: 1073741824,
		},
		{
			name: "unreadable memory.stat",
			files: with(v2files("1073741824\n", "max\n", "max\n"), map[string]string{
				v2leaf + "/memory.stat": "",
			}),
			dirs:    []string{v2leaf + "/memory.stat"},
			wantErr: "memory.stat: is a directory",
		},
		{
			name: "unreadable ancestor limit",
			files: with(v2files("1073741824\n", "max\n", "max\n"), map[string]string{
				v2pod + "/memory.max": "",
			}),
			dirs:    []string{v2pod + "/memory.max"},
			wantErr: "memory.max: is a directory",
		},
		{
			name: "v2 no memory controller",
			files: with(v2files("1073741824\n", "max\n", "max\n"), map[string]string{
				v2leaf + "/memory.current": "",
			}),
			wantErr: "memory.current: no such file",
		},
		{
			name: "v1 memory.stat without total_inactive_file",
			files: with(v1files("1073741824\n", ""), map[string]string{
				"/sys/fs/cgroup/memory/memory.stat": "cache 1\nrss 2\ninactive_file 3\n",
			}),
			wantErr: "no total_inactive_file",
		},
		{
			name:    "malformed limit",
			files:   with(v2files("lots\n", "max\n", "max\n"), nil),
			wantErr: `memory.max: "lots\n" is not a limit`,
		},
		{
			name:    "malformed ancestor limit",
			files:   v2files("max\n", "lots\n", "max\n"),
			wantErr: `../memory.max: "lots\n" is not a limit`,
		},
		{
			name:    "no /proc/self/cgroup",
			files:   map[string]string{"/proc/self/mountinfo": rootMount},
			wantErr: "not in a cgroup",
		},
		{
			name: "no memory hierarchy",
			files: map[string]string{
				"/proc/self/cgroup":    "4:cpu:/x\n",
				"/proc/self/mountinfo": rootMount,
			},
			wantErr: "no memory cgroup",
		},
		{
			name: "no cgroup2 mount",
			files: with(v2files("max\n", "max\n", "max\n"), map[string]string{
				"/proc/self/mountinfo": rootMount,
			}),
			wantErr: "no cgroup2 mount",
		},
		{
			name: "cgroup outside the namespace",
			files: with(v2files("max\n", "max\n", "max\n"), map[string]string{
				"/proc/self/cgroup": "0::/../../other\n",
			}),
			wantErr: "no cgroup2 mount",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ft := newFakeTree(t, tt.files)
			for _, d := range tt.dirs {
				if err := os.MkdirAll(filepath.Join(ft.root, d), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			r := newMemoryReaderAt(ft.root)
			defer r.close()
			for i := range 2 { // the second from the files kept open
				m := r.read()
				err := r.cgroupErr()
				if m.cgroupUsage != tt.wantUsage || m.cgroupLimit != tt.wantLimit {
					t.Errorf("read %d: usage %d, limit %d; want %d, %d (cgroupErr %v)", i, m.cgroupUsage, m.cgroupLimit, tt.wantUsage, tt.wantLimit, err)
				}
				switch {
				case tt.wantErr == "" && err != nil:
					t.Errorf("read %d: cgroupErr() = %v", i, err)
				case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
					t.Errorf("read %d: cgroupErr() = %v, want one with %q", i, err, tt.wantErr)
				}
				if m.goTotal == 0 {
					t.Errorf("read %d: no Go figures", i)
				}
			}
		})
	}
}

// The limit is read on every read: a vertical pod autoscaler changes it in
// place. So is the usage, of course.
func TestCgroupLimitChanges(t *testing.T) {
	ft := newFakeTree(t, v2files("max\n", "2147483648\n", "max\n"))
	r := newMemoryReaderAt(ft.root)
	defer r.close()
	if m := r.read(); m.cgroupLimit != 2147483648 {
		t.Fatalf("limit %d, want 2147483648 (cgroupErr %v)", m.cgroupLimit, r.cgroupErr())
	}
	ft.write(v2leaf+"/memory.max", "1073741824\n")
	ft.write(v2leaf+"/memory.current", "600000000\n")
	if m := r.read(); m.cgroupLimit != 1073741824 || m.cgroupUsage != 600000000-123456789 {
		t.Errorf("after the change: usage %d, limit %d; want %d, 1073741824", m.cgroupUsage, m.cgroupLimit, 600000000-123456789)
	}
	ft.write(v2pod+"/memory.max", "max\n")
	ft.write(v2leaf+"/memory.max", "max\n")
	if m := r.read(); m.cgroupLimit != 0 {
		t.Errorf("limits lifted: limit %d, want 0", m.cgroupLimit)
	}
}

// A memory.stat larger than the buffer is read whole.
func TestCgroupLongMemoryStat(t *testing.T) {
	long := strings.Repeat("some_future_counter 12345678901234\n", 1000) + v2statWith(123456789)
	ft := newFakeTree(t, with(v2files("1073741824\n", "max\n", "max\n"), map[string]string{v2leaf + "/memory.stat": long}))
	r := newMemoryReaderAt(ft.root)
	defer r.close()
	if m := r.read(); m.cgroupUsage != 500000000-123456789 || r.cgroupErr() != nil {
		t.Errorf("usage %d, want %d (cgroupErr %v)", m.cgroupUsage, 500000000-123456789, r.cgroupErr())
	}
}

func TestCgroupMemoryDir(t *testing.T) {
	tests := []struct {
		name, cgroup, mountinfo string
		wantDir, wantTop        string
		wantV1                  bool
	}{
		{"v2 host", "0::/a/b\n", cgroup2Host, "/sys/fs/cgroup/a/b", "/sys/fs/cgroup", false},
		{"v2 namespace", "0::/\n", "1 0 0:1 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n", "/sys/fs/cgroup", "/sys/fs/cgroup", false},
		{"v2 bind mount of a subtree", "0::/a/b\n", "1 0 0:1 /a /mnt rw - cgroup2 cgroup2 rw\n", "/mnt/b", "/mnt", false},
		{"v2 root is a name prefix only", "0::/ab\n", "1 0 0:1 /a /mnt rw - cgroup2 cgroup2 rw\n2 0 0:1 / /cg rw - cgroup2 cgroup2 rw\n", "/cg/ab", "/cg", false},
		{"v1 docker", "11:memory:/docker/abc\n0::/\n", "34 30 0:30 /docker/abc /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n", "/sys/fs/cgroup/memory", "/sys/fs/cgroup/memory", true},
		{"v1 hybrid", "4:memory:/p/x\n0::/\n", cgroupHybrid, "/sys/fs/cgroup/memory/p/x", "/sys/fs/cgroup/memory", true},
		{"optional fields", "0::/a\n", "1 0 0:1 / /cg rw shared:4 master:1 - cgroup2 cgroup2 rw\n", "/cg/a", "/cg", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, top, v1, err := memoryCgroupDir(tt.cgroup, tt.mountinfo)
			if err != nil || dir != tt.wantDir || top != tt.wantTop || v1 != tt.wantV1 {
				t.Errorf("memoryCgroupDir = %q, %q, %v, %v; want %q, %q, %v", dir, top, v1, err, tt.wantDir, tt.wantTop, tt.wantV1)
			}
		})
	}
}

func TestCgroupReadAllocs(t *testing.T) {
	for name, files := range map[string]map[string]string{
		"v2": v2files("max\n", "2147483648\n", "max\n"),
		"v1": v1files("1073741824\n", "536870912"),
	} {
		t.Run(name, func(t *testing.T) {
			r := newMemoryReaderAt(newFakeTree(t, files).root)
			defer r.close()
			if n := testing.AllocsPerRun(100, func() { r.read() }); n != 0 {
				t.Errorf("read allocates %v times, want 0", n)
			}
			if err := r.cgroupErr(); err != nil {
				t.Error(err)
			}
		})
	}
}

// The cost of reading the ancestors' limits on every read: the cgroup of a
// Kubernetes container without a cgroup namespace, four memory.max files
// deep, against one in a namespace, which sees only its own.
func BenchmarkMemoryReadFakeCgroupV2(b *testing.B) {
	for name, files := range map[string]map[string]string{
		"limits=4": v2files("max\n", "2147483648\n", "max\n"),
		"limits=1": {
			"/proc/self/cgroup":             "0::/\n",
			"/proc/self/mountinfo":          rootMount + "40 22 0:35 / /sys/fs/cgroup rw - cgroup2 cgroup rw\n",
			"/sys/fs/cgroup/memory.current": "500000000\n",
			"/sys/fs/cgroup/memory.stat":    v2statWith(123456789),
			"/sys/fs/cgroup/memory.max":     "268435456\n",
		},
	} {
		b.Run(name, func(b *testing.B) {
			r := newMemoryReaderAt(newFakeTree(b, files).root)
			defer r.close()
			if err := r.cgroupErr(); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				r.read()
			}
		})
	}
}

// A file that fails once leaves the figures unknown for good, rather than
// have them come and go.
func TestCgroupFailureSticks(t *testing.T) {
	ft := newFakeTree(t, v2files("1073741824\n", "max\n", "max\n"))
	r := newMemoryReaderAt(ft.root)
	defer r.close()
	if m := r.read(); m.cgroupLimit != 1073741824 || r.cgroupErr() != nil {
		t.Fatalf("limit %d, cgroupErr %v", m.cgroupLimit, r.cgroupErr())
	}
	ft.write(v2leaf+"/memory.current", "garbage\n")
	if m := r.read(); m.cgroupUsage != 0 || m.cgroupLimit != 0 || r.cgroupErr() == nil {
		t.Errorf("after a bad read: usage %d, limit %d, cgroupErr %v", m.cgroupUsage, m.cgroupLimit, r.cgroupErr())
	}
	ft.write(v2leaf+"/memory.current", "500000000\n")
	if m := r.read(); m.cgroupUsage != 0 || m.cgroupLimit != 0 || r.cgroupErr() == nil {
		t.Errorf("after the file is good again: usage %d, limit %d, cgroupErr %v", m.cgroupUsage, m.cgroupLimit, r.cgroupErr())
	}
	t.Logf("cgroupErr: %v", r.cgroupErr())
}
