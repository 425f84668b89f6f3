package accesslog_test

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"testing"

	"github.com/usaged/usaged/meter/accesslog"
)

var benchLines = []struct {
	name   string
	format accesslog.Format
	line   string
}{
	{"nginx", accesslog.Combined, `203.0.113.7 - ann [10/Nov/2026:13:55:37 +0100] "POST /api/v2/conversations?expand=participants HTTP/1.1" 201 512 "https://app.example.com/" "Mozilla/5.0 (X11; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0" 0.042`},
	{"caddy", accesslog.JSON, `{"level":"info","ts":1794315336.5,"logger":"http.log.access.log0","msg":"handled request","request":{"remote_ip":"203.0.113.7","remote_port":"41342","client_ip":"203.0.113.7","proto":"HTTP/2.0","method":"GET","host":"api.example.com","uri":"/api/v2/users/me?expand=presence","headers":{"User-Agent":["curl/8.5.0"],"Accept":["*/*"],"X-Org-Id":["org-7"]},"tls":{"resumed":false,"version":772,"cipher_suite":4865,"proto":"h2","server_name":"api.example.com"}},"bytes_read":0,"user_id":"u-1","duration":0.0125,"size":311,"status":200,"resp_headers":{"Server":["Caddy"],"Content-Type":["application/json"]}}`},
	{"envoy", accesslog.JSON, `{"start_time":"2026-11-10T12:55:36.123Z","method":"GET","path":"/api/v2/users/8f1c?expand=presence","protocol":"HTTP/1.1","response_code":200,"response_flags":"-","bytes_received":0,"bytes_sent":2326,"duration":7,"upstream_service_time":"6","x_forwarded_for":"203.0.113.7","user_agent":"curl/8.5.0","request_id":"5b2e4c1e-93d5-4a0c-9a3e-0f6c2b1d7e11","authority":"api.example.com","upstream_host":"10.0.0.5:8080"}`},
}

// BenchmarkParse measures Parser.Parse per format, in lines/s.
func BenchmarkParse(b *testing.B) {
	for _, bl := range benchLines {
		b.Run(bl.name, func(b *testing.B) {
			p := accesslog.NewParser(bl.format)
			line := []byte(bl.line)
			b.SetBytes(int64(len(line)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := p.Parse(line); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lines/s")
		})
	}
}

// BenchmarkReader measures a whole import's reading side — line splitting,
// gunzip, parsing and EventID — in lines/s.
func BenchmarkReader(b *testing.B) {
	const n = 10_000
	for _, bl := range benchLines {
		var plain bytes.Buffer
		for range n {
			fmt.Fprintln(&plain, bl.line)
		}
		var gz bytes.Buffer
		zw := gzip.NewWriter(&gz)
		zw.Write(plain.Bytes())
		zw.Close()
		for _, in := range []struct {
			name string
			data []byte
		}{{"plain", plain.Bytes()}, {"gzip", gz.Bytes()}} {
			b.Run(bl.name+"/"+in.name, func(b *testing.B) {
				b.SetBytes(int64(plain.Len()))
				b.ReportAllocs()
				for b.Loop() {
					r, err := accesslog.NewReader(bytes.NewReader(in.data), bl.format)
					if err != nil {
						b.Fatal(err)
					}
					ids := accesslog.NewEventIDs("web1")
					for {
						_, _, raw, err := r.Next()
						if err == io.EOF {
							break
						}
						if err != nil {
							b.Fatal(err)
						}
						_ = ids.Next(raw)
					}
				}
				b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "lines/s")
			})
		}
	}
}
