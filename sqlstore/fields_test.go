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
		if !json.Valid([]byte(enc)) {
			t.Fatalf("%q is not JSON", enc)
		}
		out, err := decodeFields(enc)
		if err != nil {
			t.Fatalf("%q does not decode: %v", enc, err)
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
	if want := `{"a":"x","b":{"from":"1","to":"2"}}`; got != want {
		t.Fatalf("%s, want %s", got, want)
	}
	// Rows written before the short form read as they were written.
	old, err := decodeFields(`{"a":{"from":"","to":"x"},"b":{"from":"1","to":"2"},"c":{"to":""}}`)
	want := map[string]usersync.FieldChange{"a": {To: "x"}, "b": {From: "1", To: "2"}, "c": {}}
	if err != nil || !reflect.DeepEqual(old, want) {
		t.Fatalf("the long form: %v %v", old, err)
	}
	if _, err := decodeFields(`{"a":1}`); err == nil {
		t.Fatal("a number read as a field change")
	}
	if strings.Contains(encodeFields(map[string]usersync.FieldChange{}), "null") {
		t.Fatal("empty fields")
	}
}
