// Package extract unpacks tar archives beneath one directory and nowhere else.
//
// Every file operation goes through an [os.Root] opened on the target: a name
// with "..", an absolute name, a symbolic link that points outside the target
// (whether the archive made it or it was there before) and a hard link to a
// file outside it all fail, however the entries are ordered. What the archive
// may create beyond directories, regular files, symbolic links and hard links
// is chosen by the caller (Options): setuid and setgid bits only on request,
// device nodes, pipes and sockets never.
//
// WriteUpper goes the other way for an overlayfs upper directory: it writes
// what a container changed as a layer, whiteouts and opaque directories
// included, which Extract with Options.Whiteouts unpacks again.
// WhiteoutsToLayer does the same for an upper layer that arrives as a tar
// archive in the overlay's own terms (runsc writes a sandbox's so).
package extract
