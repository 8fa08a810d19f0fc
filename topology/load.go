package topology

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"

	"gopkg.in/yaml.v3"
)

// LabFileName is the file a lab directory holds.
const LabFileName = "lab.yaml"

// A lab file's bounds: far above any lab a course or an engineer writes, and
// low enough that a runaway file (a generator gone wrong, a hostile upload)
// is refused in a moment instead of taking minutes and gigabytes to check.
const (
	MaxLabFileSize = 1 << 20 // bytes: 1 MiB
	MaxScriptSteps = 10000
)

// Load reads a lab from a file, or from a directory holding lab.yaml.
func Load(path string) (*Lab, error) {
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		path = filepath.Join(path, LabFileName)
	}
	data, err := readBounded(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s: no such lab file", path)
		}
		return nil, err
	}
	return Parse(path, data)
}

// LoadFiles is Load with the files the lab names (certificates, keys) read by
// files instead of from beside the lab file: `--name` verbs read the copy of
// a lab file kept with a deployed lab's state, and its files where the
// original lives.
func LoadFiles(path string, files FileReader) (*Lab, error) {
	data, err := readBounded(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s: no such lab file", path)
		}
		return nil, err
	}
	return ParseFiles(path, data, files)
}

// readBounded reads a file of at most MaxLabFileSize bytes, and one byte more
// of a larger one: enough for Parse to refuse it without reading it all.
func readBounded(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, MaxLabFileSize+1))
}

// tooLarge refuses a file over MaxLabFileSize.
func tooLarge(file string, data []byte) error {
	if len(data) <= MaxLabFileSize {
		return nil
	}
	return Errors{{Pos: Pos{File: file, Line: 1, Col: 1}, Msg: fmt.Sprintf("the file is larger than %d bytes (1 MiB), the most a lab file may hold", MaxLabFileSize)}}
}

// tooManySteps refuses a script of more than MaxScriptSteps steps, at the
// first step over the bound, before the steps are decoded one by one.
func tooManySteps(file string, root *yaml.Node) error {
	doc := root
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		doc = doc.Content[0]
	}
	if doc.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(doc.Content); i += 2 {
		k, v := doc.Content[i], doc.Content[i+1]
		if k.Value == "script" && v.Kind == yaml.SequenceNode && len(v.Content) > MaxScriptSteps {
			s := v.Content[MaxScriptSteps]
			return Errors{{Pos: Pos{File: file, Line: s.Line, Col: s.Column},
				Msg: fmt.Sprintf("the script has %d steps; a script may have at most %d", len(v.Content), MaxScriptSteps)}}
		}
	}
	return nil
}

// LoadFS reads lab.yaml from a directory of a file system (the embedded labs).
func LoadFS(fsys fs.FS, dir string) (*Lab, error) {
	p := filepath.ToSlash(filepath.Join(dir, LabFileName))
	data, err := fs.ReadFile(fsys, p)
	if err != nil {
		return nil, err
	}
	return ParseFiles(p, data, FSReader(fsys, filepath.ToSlash(dir)))
}

// Parse decodes and validates a lab file. file names the source in messages,
// and the files the lab names (certificates, keys) are read relative to its
// directory. On failure the error is an Errors listing every problem found.
func Parse(file string, data []byte) (*Lab, error) {
	return ParseFiles(file, data, nil)
}

// ParseFiles is Parse with the files the lab names read by files (nil: from
// beside file).
func ParseFiles(file string, data []byte, files FileReader) (*Lab, error) {
	if err := tooLarge(file, data); err != nil {
		return nil, err
	}
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil {
		if err == io.EOF {
			return nil, Errors{{Pos: Pos{File: file, Line: 1, Col: 1}, Msg: "the lab file is empty"}}
		}
		return nil, Errors{syntaxError(file, data, err)}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, Errors{{Pos: Pos{File: file, Line: extra.Line, Col: extra.Column}, Msg: "a lab file holds one YAML document; remove the second (---)"}}
	}
	if err := tooManySteps(file, &root); err != nil {
		return nil, err
	}
	d := &decoder{file: file, pos: map[string]Pos{}}
	if files == nil {
		files = DirReader(filepath.Dir(file))
	}
	lab := &Lab{File: file, Source: data, files: files}
	d.decode(&root, reflect.ValueOf(lab).Elem(), "")
	lab.pos = d.pos
	// Validate even when decoding found problems: a user fixes the whole file
	// in one pass. Values that failed to decode stay zero and validation
	// leaves zero values to the decoder's message.
	lab.validate(&d.errs)
	if err := d.errs.sorted(); err != nil {
		return nil, err
	}
	return lab, nil
}
