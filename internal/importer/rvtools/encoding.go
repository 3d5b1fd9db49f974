package rvtools

import (
	"bytes"
	"unicode/utf16"
	"unicode/utf8"
)

// Byte order marks of UTF-16 text. Excel's "Unicode Text" export is UTF-16LE with tabs.
var (
	utf16LEBOM = []byte{0xFF, 0xFE}
	utf16BEBOM = []byte{0xFE, 0xFF}
)

// utf8Text returns data as UTF-8: UTF-16 text with a byte order mark is decoded (without
// the mark), anything else is returned as it is. odd reports a UTF-16 text whose last
// byte is half a code unit; the byte is dropped.
func utf8Text(data []byte) (text []byte, odd bool) {
	var big bool
	switch {
	case bytes.HasPrefix(data, utf16LEBOM):
	case bytes.HasPrefix(data, utf16BEBOM):
		big = true
	default:
		return data, false
	}
	data = data[2:]
	odd = len(data)%2 == 1
	out := make([]byte, 0, len(data)/2+len(data)/8)
	for i := 0; i+1 < len(data); i += 2 {
		u := rune(data[i]) | rune(data[i+1])<<8
		if big {
			u = rune(data[i])<<8 | rune(data[i+1])
		}
		if utf16.IsSurrogate(u) && i+3 < len(data) {
			v := rune(data[i+2]) | rune(data[i+3])<<8
			if big {
				v = rune(data[i+2])<<8 | rune(data[i+3])
			}
			if r := utf16.DecodeRune(u, v); r != utf8.RuneError {
				out = utf8.AppendRune(out, r)
				i += 2
				continue
			}
		}
		if utf16.IsSurrogate(u) {
			u = utf8.RuneError
		}
		out = utf8.AppendRune(out, u)
	}
	return out, odd
}

// zipMagic starts every zip archive, and so every Office Open XML file.
var zipMagic = []byte("PK\x03\x04")

// isWorkbook reports whether data is an Excel workbook (.xlsx): a zip archive holding
// xl/workbook.xml, whose name the archive stores as it is.
func isWorkbook(data []byte) bool {
	return bytes.HasPrefix(data, zipMagic) && bytes.Contains(data, []byte("xl/workbook.xml"))
}
