// Package labs holds the labs shipped with ipseclab, embedded in the binary.
// Each is a directory with lab.yaml and a lesson (README.md): what to watch
// and why.
package labs

import (
	"embed"
	"io/fs"
	"os"
	"sort"
	"strings"

	"github.com/ipseclab/ipseclab/topology"
)

//go:embed */lab.yaml */*.md */lesson-lines.txt */*.pem */*.key
var files embed.FS

// LessonLinesFile lists, in a lab's directory, the lines its lesson tells the
// student to look for: text that the default timeline of a run must contain.
const LessonLinesFile = "lesson-lines.txt"

// Default is the lab that runs when none is named.
const Default = "site-to-site"

// FS is the embedded labs, one directory each.
func FS() fs.FS { return files }

// Info describes a shipped lab.
type Info struct {
	Name        string
	Description string
}

// List returns the shipped labs, the default first.
func List() ([]Info, error) {
	ents, err := fs.ReadDir(files, ".")
	if err != nil {
		return nil, err
	}
	var out []Info
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		lab, err := topology.LoadFS(files, e.Name())
		if err != nil {
			return nil, err
		}
		out = append(out, Info{Name: e.Name(), Description: lab.Description})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Name == Default && out[j].Name != Default })
	return out, nil
}

// Load resolves what a user typed: a path to a lab file or directory, or the
// name of a shipped lab. An empty name means the default lab. The returned
// source says where the lab came from ("embedded:NAME" or the path).
func Load(arg string) (lab *topology.Lab, source string, err error) {
	if arg == "" {
		arg = Default
	}
	if _, statErr := os.Stat(arg); statErr == nil || strings.ContainsAny(arg, "/.") {
		lab, err := topology.Load(arg)
		return lab, arg, err
	}
	if _, err := fs.Stat(files, arg+"/lab.yaml"); err == nil {
		lab, err := topology.LoadFS(files, arg)
		return lab, "embedded:" + arg, err
	}
	names := []string{}
	if l, err := List(); err == nil {
		for _, i := range l {
			names = append(names, i.Name)
		}
	}
	return nil, "", &NotFoundError{Arg: arg, Shipped: names}
}

// Lesson returns a shipped lab's README.md.
func Lesson(name string) (string, error) {
	b, err := fs.ReadFile(files, name+"/README.md")
	return string(b), err
}

// NotFoundError says a lab is neither a file nor a shipped lab.
type NotFoundError struct {
	Arg     string
	Shipped []string
}

func (e *NotFoundError) Error() string {
	return "no lab file or directory " + e.Arg + ", and no shipped lab of that name (shipped: " + strings.Join(e.Shipped, ", ") + ")"
}

// LessonLines returns the lines a shipped lab's lesson points at (see
// LessonLinesFile), without comments and blank lines.
func LessonLines(name string) ([]string, error) {
	b, err := fs.ReadFile(files, name+"/"+LessonLinesFile)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return out, nil
}
