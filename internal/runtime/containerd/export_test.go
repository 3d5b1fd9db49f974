package containerd

// ViewPrefix starts the key of every view WithImageRoot makes (its
// snapshot's, its lease's, its mount point's name), for the tests to find
// them.
const ViewPrefix = viewPrefix
