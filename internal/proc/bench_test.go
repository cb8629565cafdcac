package proc

import "testing"

// BenchmarkLiveGroups: one scan of /proc for the process groups that have a
// live member (what a stop does after SIGKILL, and an exit of a group leader).
func BenchmarkLiveGroups(b *testing.B) {
	for range b.N {
		if len(readLiveGroups()) == 0 {
			b.Fatal("no process at all")
		}
	}
}
