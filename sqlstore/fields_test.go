package sqlstore

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/usersync/usersync"
)

func FuzzEncodeFields(f *testing.F) {
	for _, s := range []string{"plain", `quo"te\back`, "tab\tnew\nline\x00", "ünï©ødé", "bad\xffutf8", "\u2028", "<&>"} {
		f.Add("k", s, s)
	}
	f.Fuzz(func(t *testing.T, key, from, to string) {
		in := map[string]usersync.FieldChange{key: {From: from, To: to}, "other": {To: "x"}}
		enc := encodeFields(in)
		var out map[string]usersync.FieldChange
		if err := json.Unmarshal([]byte(enc), &out); err != nil {
			t.Fatalf("%q is not JSON: %v", enc, err)
		}
		// What encoding/json reads back is what it would have read from its own encoding.
		std, _ := json.Marshal(in)
		var want map[string]usersync.FieldChange
		json.Unmarshal(std, &want)
		if !reflect.DeepEqual(out, want) {
			t.Fatalf("round trip: %q → %v, want %v", enc, out, want)
		}
	})
}

func TestEncodeFieldsSorted(t *testing.T) {
	got := encodeFields(map[string]usersync.FieldChange{"b": {From: "1", To: "2"}, "a": {To: "x"}})
	if want := `{"a":{"from":"","to":"x"},"b":{"from":"1","to":"2"}}`; got != want {
		t.Fatalf("%s, want %s", got, want)
	}
	if strings.Contains(encodeFields(map[string]usersync.FieldChange{}), "null") {
		t.Fatal("empty fields")
	}
}
