package pull

import "testing"

func TestClosest(t *testing.T) {
	known := []string{"userPrincipalName", "mail", "givenName", "surname", "login", "email"}
	for in, want := range map[string]string{
		"userPrincipleName": "userPrincipalName", // the mistake seen
		"USERPRINCIPALNAME": "userPrincipalName",
		"mial":              "mail",
		"logn":              "login",
		"emial":             "email",
		"department":        "", // nothing close
		"":                  "",
	} {
		if got := Closest(in, known); got != want {
			t.Errorf("Closest(%q) = %q, want %q", in, got, want)
		}
	}
}
