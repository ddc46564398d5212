package dwarftypes

import "testing"

func TestGoName(t *testing.T) {
	for _, tc := range []struct{ link, want string }{
		{"main.Session", "main.Session"},
		{"*net/http.Client", "*net/http.Client"},
		{"gopkg.in/yaml%2ev3.Node", "gopkg.in/yaml.v3.Node"},
		{"map[string]*example.com/a%2eb/c%2ed.T", "map[string]*example.com/a.b/c.d.T"},
		{"noalg.map.group[string]*main.Conn", "map.group[string]*main.Conn"},
		{"*noalg.map.group[string]*main.Conn", "*map.group[string]*main.Conn"},
		{"noalg.struct { F uintptr; X0 *noalg.[32]uint8 }", "struct { F uintptr; X0 *[32]uint8 }"},
		{"[]noalg.struct {}", "[]struct {}"},
		{"example.com/noalg.T", "example.com/noalg.T"},
		{"main.noalg.T", "main.noalg.T"},
	} {
		if got := goName(tc.link); got != tc.want {
			t.Errorf("goName(%q) = %q, want %q", tc.link, got, tc.want)
		}
	}
}
