package apachelog

import "testing"

func benchParse(b *testing.B, format string, lines [][]byte) {
	p := MustCompile(format)
	var ev Event
	for _, l := range lines {
		if err := p.Parse(l, &ev); err != nil {
			b.Fatal(err)
		}
	}
	var n int64
	for _, l := range lines {
		n += int64(len(l))
	}
	b.SetBytes(n / int64(len(lines)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if err := p.Parse(lines[i%len(lines)], &ev); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseCombined(b *testing.B) {
	benchParse(b, "combined", readLines(b, "access_combined.log"))
}

func BenchmarkParseCommon(b *testing.B) {
	benchParse(b, "common", readLines(b, "access_common.log"))
}

func BenchmarkParseVhostCombined(b *testing.B) {
	benchParse(b, "vhost_combined", readLines(b, "access_vhost_combined.log"))
}

func BenchmarkParseError24(b *testing.B) {
	benchParse(b, "error", readLines(b, "error24.log"))
}

func BenchmarkParseError22(b *testing.B) {
	benchParse(b, "error", readLines(b, "error22.log"))
}

func BenchmarkParseAuto(b *testing.B) {
	var lines [][]byte
	for _, td := range testdataFormats {
		lines = append(lines, readLines(b, td.file)...)
	}
	benchParse(b, "auto", lines)
}
