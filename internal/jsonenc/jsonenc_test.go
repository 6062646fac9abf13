package jsonenc

import (
	"encoding/json"
	"testing"
	"unicode/utf8"
)

// AppendString must write what a JSON decoder reads back as the same text
// (RFC 8259 §7): quotes, backslashes and control characters escaped, and
// invalid UTF-8 replaced as encoding/json replaces it.
func TestAppendString(t *testing.T) {
	for _, s := range []string{"", "plain", `quo"te`, `back\slash`, "tab\tnew\nline\x00nul\x1f", "Zoë 東京 👋", "line\u2028sep", "<a&b>"} {
		b := AppendString(nil, s)
		var got string
		if err := json.Unmarshal(b, &got); err != nil || got != s {
			t.Errorf("%q encoded as %s, which reads back as %q (%v)", s, b, got, err)
		}
		want, _ := json.Marshal(s)
		var again string
		json.Unmarshal(want, &again)
		if again != got {
			t.Errorf("%q: encoding/json reads %q, AppendString %q", s, again, got)
		}
	}
	var got string
	if err := json.Unmarshal(AppendString(nil, "a\xffb"), &got); err != nil || got != "a\ufffdb" {
		t.Errorf("invalid UTF-8 read back as %q (%v)", got, err)
	}
}

func FuzzAppendString(f *testing.F) {
	f.Add("plain")
	f.Add("\x00\"\\\u2029\xff")
	f.Fuzz(func(t *testing.T, s string) {
		b := AppendString([]byte("x"), s)[1:]
		var got string
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("%q encoded as %s: not JSON: %v", s, b, err)
		}
		if utf8.ValidString(s) && got != s {
			t.Fatalf("%q read back as %q", s, got)
		}
	})
}
