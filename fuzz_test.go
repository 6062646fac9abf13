package usersync

import (
	"strings"
	"testing"
)

// FuzzSettingParse checks that parsing any value either fails with an
// EINVALID that names the setting, or yields a canonical value that parses
// to itself.
func FuzzSettingParse(f *testing.F) {
	for _, s := range []string{"Y", "n", " yes ", "TRUE", "0", "42", "-7", "maybe", "", "9999999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		for _, d := range []SettingDef{{Key: "B", Type: SettingBool}, {Key: "I", Type: SettingInt}, {Key: "S", Type: SettingString}} {
			got, err := d.Parse(v)
			if err != nil {
				if ErrorCode(err) != EINVALID || !strings.Contains(err.Error(), d.Key) {
					t.Fatalf("%s.Parse(%q): %v", d.Key, v, err)
				}
				continue
			}
			if again, err := d.Parse(got); err != nil || again != got {
				t.Fatalf("%s: canonical %q of %q parses to %q, %v", d.Key, got, v, again, err)
			}
			if d.Type == SettingBool && got != "Y" && got != "N" {
				t.Fatalf("bool parsed to %q", got)
			}
		}
	})
}

// FuzzGroupPath checks name validation against the folder helpers: a valid
// name's prefixes are valid folder paths that lead to its folder.
func FuzzGroupPath(f *testing.F) {
	for _, s := range []string{"Sales", "app:test:group5", "a::b", ":a", "a:", " a", "a\x00b", "é:ü"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if err := ValidatePath("group name", name, MaxGroupNameLength); err != nil {
			if ErrorCode(err) != EINVALID {
				t.Fatalf("%q: %v", name, err)
			}
			return
		}
		prefixes := FolderPrefixes(name)
		for _, p := range prefixes {
			if err := ValidatePath("folder", p, MaxGroupNameLength); err != nil {
				t.Fatalf("prefix %q of valid %q is invalid: %v", p, name, err)
			}
		}
		folder := FolderPath(name)
		if (folder == "") != (len(prefixes) == 0) || (folder != "" && prefixes[len(prefixes)-1] != folder) {
			t.Fatalf("%q: folder %q, prefixes %q", name, folder, prefixes)
		}
	})
}
