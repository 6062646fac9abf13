package pull

import (
	"context"
	"strings"
	"unicode/utf8"

	"github.com/usersync/usersync"
)

// Closest returns the name among known that a mistyped name most likely
// meant: the same name in another case, else the one fewest single-letter
// edits away, if that is at most a third of its length (and at least 2).
// It returns "" when nothing is that close.
func Closest(name string, known []string) string {
	best, bestDist := "", 0
	for _, k := range known {
		if strings.EqualFold(k, name) {
			return k
		}
		d := editDistance(strings.ToLower(name), strings.ToLower(k))
		if best == "" || d < bestDist {
			best, bestDist = k, d
		}
	}
	if best == "" || bestDist > max(2, len([]rune(best))/3) {
		return ""
	}
	return best
}

// editDistance is the optimal-string-alignment distance between a and b,
// by runes: insertions, deletions, substitutions and swaps of neighbours
// ("mial" for "mail") count one each.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	rows := make([][]int, len(ra)+1)
	for i := range rows {
		rows[i] = make([]int, len(rb)+1)
		rows[i][0] = i
	}
	for j := range rows[0] {
		rows[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d := min(rows[i-1][j]+1, rows[i][j-1]+1, rows[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d = min(d, rows[i-2][j-2]+1)
			}
			rows[i][j] = d
		}
	}
	return rows[len(ra)][len(rb)]
}

// GroupNotFound adds "did you mean" to a source's answer that a group
// name is unknown (ENOTFOUND), from the names that start with the same
// letter (starting, asked only then). Any other error is returned as it is.
func GroupNotFound(ctx context.Context, err error, name string, starting func(ctx context.Context, prefix string) ([]string, error)) error {
	if usersync.ErrorCode(err) != usersync.ENOTFOUND || name == "" {
		return err
	}
	first, _ := utf8.DecodeRuneInString(name)
	known, lerr := starting(ctx, string(first))
	if lerr != nil {
		return err
	}
	if sug := Closest(name, known); sug != "" && sug != name {
		return usersync.Errorf(usersync.ENOTFOUND, "%s; did you mean %q?", usersync.ErrorMessage(err), sug)
	}
	return err
}
