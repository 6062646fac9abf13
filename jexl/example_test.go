package jexl_test

import (
	"fmt"

	"github.com/usersync/usersync/jexl"
)

// A provisioner's group name from the group's path, as Grouper's
// groupJexl computes it.
func Example() {
	p, err := jexl.Compile(`group.name.replaceAll("^app:test:", "").replaceAll(":", " / ")`, "group")
	if err != nil {
		panic(err)
	}
	name, _ := p.Eval(map[string]any{"group": map[string]any{"name": "app:test:sales:emea"}})
	fmt.Println(name)
	// Output: sales / emea
}
