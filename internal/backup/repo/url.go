package repo

import (
	"fmt"
	"net"
	"net/url"
	"path"
	"strconv"
	"strings"
)

// Location is a parsed repository URL.
type Location struct {
	Scheme string // "file" or "s3"

	// Path is the repository's directory (file).
	Path string

	// Bucket and Prefix say where in S3 the objects go: object "config" is
	// stored as Prefix+"config" (Prefix is empty or ends in "/").
	Bucket string
	Prefix string
	// Endpoint is the S3 server's host:port (default s3.amazonaws.com).
	Endpoint string
	// Insecure selects plain HTTP instead of HTTPS.
	Insecure bool
	// Region is the bucket's region (default us-east-1).
	Region string
	// Retries is how many times an S3 request is tried before it fails
	// (default 5).
	Retries int
}

// URL forms, for error messages.
const (
	fileURLForm = "file:///absolute/path"
	s3URLForm   = "s3://bucket[/prefix]?endpoint=host:port[&insecure=true][&region=name][&retries=n]"
)

// Defaults of S3 URLs.
const (
	defaultS3Endpoint = "s3.amazonaws.com"
	defaultS3Region   = "us-east-1"
	defaultS3Retries  = 5
)

// ParseURL parses a repository URL:
//
//	file:///absolute/path
//	s3://bucket[/prefix]?endpoint=host:port[&insecure=true][&region=name][&retries=n]
//
// A file repository is a directory (created by Init if missing). An S3
// repository is a bucket, or a prefix within one; endpoint defaults to
// s3.amazonaws.com, insecure=true speaks plain HTTP (for a server on
// localhost), region defaults to us-east-1 and retries (per request) to 5.
// Credentials never go in the URL: they come from the environment (see
// OpenStorage).
func ParseURL(raw string) (Location, error) {
	bad := func(format string, args ...any) (Location, error) {
		return Location{}, fmt.Errorf("%w: repository URL %q: %s", ErrInvalid, raw, fmt.Sprintf(format, args...))
	}
	u, err := url.Parse(raw)
	if err != nil {
		return bad("%v; want %s or %s", err, fileURLForm, s3URLForm)
	}
	switch u.Scheme {
	case "file":
		return parseFileURL(u, bad)
	case "s3":
		return parseS3URL(u, bad)
	case "":
		return bad("no scheme; want %s or %s", fileURLForm, s3URLForm)
	default:
		return bad("unknown scheme %q; want %s or %s", u.Scheme, fileURLForm, s3URLForm)
	}
}

type badURL func(format string, args ...any) (Location, error)

func parseFileURL(u *url.URL, bad badURL) (Location, error) {
	if u.Opaque != "" || (u.Host != "" && u.Host != "localhost") {
		return bad("a file URL has an empty host and an absolute path, as in %s (three slashes)", fileURLForm)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return bad("a file URL takes no query or fragment; want %s", fileURLForm)
	}
	p := u.Path
	if p == "" || !path.IsAbs(p) {
		return bad("the path must be absolute; want %s", fileURLForm)
	}
	p = path.Clean(p)
	if p == "/" {
		return bad("the repository cannot be the root directory; want %s", fileURLForm)
	}
	return Location{Scheme: "file", Path: p}, nil
}

func parseS3URL(u *url.URL, bad badURL) (Location, error) {
	if u.User != nil {
		return bad("credentials do not go in the URL; set STRATA_S3_ACCESS_KEY and STRATA_S3_SECRET_KEY")
	}
	if u.Host == "" {
		return bad("no bucket; want %s", s3URLForm)
	}
	if !validBucket(u.Host) {
		return bad("bucket %q is not a valid S3 bucket name (3-63 lower-case letters, digits, '-' and '.')", u.Host)
	}
	loc := Location{
		Scheme:   "s3",
		Bucket:   u.Host,
		Endpoint: defaultS3Endpoint,
		Region:   defaultS3Region,
		Retries:  defaultS3Retries,
	}
	if p := strings.Trim(u.Path, "/"); p != "" {
		if !validName(p) {
			return bad("prefix %q: use segments of letters, digits, '.', '-' and '_' separated by single '/'", p)
		}
		loc.Prefix = p + "/"
	}
	for k, vs := range u.Query() {
		v := vs[len(vs)-1]
		switch k {
		case "endpoint":
			if v != defaultS3Endpoint {
				host, port, err := net.SplitHostPort(v)
				if err != nil || host == "" || port == "" {
					return bad("endpoint %q: want host:port, as in endpoint=127.0.0.1:9000", v)
				}
			}
			loc.Endpoint = v
		case "insecure":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return bad("insecure=%q: want true or false", v)
			}
			loc.Insecure = b
		case "region":
			if v == "" {
				return bad("region is empty; leave it out for %s", defaultS3Region)
			}
			loc.Region = v
		case "retries":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 100 {
				return bad("retries=%q: want a number from 1 to 100", v)
			}
			loc.Retries = n
		default:
			return bad("unknown parameter %q; want %s", k, s3URLForm)
		}
	}
	return loc, nil
}

// validBucket applies S3's bucket naming rules (the common subset).
func validBucket(b string) bool {
	if len(b) < 3 || len(b) > 63 {
		return false
	}
	for i, c := range b {
		ok := c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.'
		if !ok || (i == 0 || i == len(b)-1) && (c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// String returns the location in URL form, without credentials.
func (l Location) String() string {
	switch l.Scheme {
	case "file":
		return (&url.URL{Scheme: "file", Path: l.Path}).String()
	case "s3":
		var q []string
		if l.Endpoint != defaultS3Endpoint {
			q = append(q, "endpoint="+l.Endpoint)
		}
		if l.Insecure {
			q = append(q, "insecure=true")
		}
		if l.Region != defaultS3Region {
			q = append(q, "region="+url.QueryEscape(l.Region))
		}
		if l.Retries != defaultS3Retries {
			q = append(q, "retries="+strconv.Itoa(l.Retries))
		}
		s := "s3://" + l.Bucket
		if l.Prefix != "" {
			s += "/" + strings.TrimSuffix(l.Prefix, "/")
		}
		if len(q) > 0 {
			s += "?" + strings.Join(q, "&")
		}
		return s
	}
	return l.Scheme + ":?"
}
