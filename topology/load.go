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

// Load reads a lab from a file, or from a directory holding lab.yaml.
func Load(path string) (*Lab, error) {
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		path = filepath.Join(path, LabFileName)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s: no such lab file", path)
		}
		return nil, err
	}
	return Parse(path, data)
}

// LoadFS reads lab.yaml from a directory of a file system (the embedded labs).
func LoadFS(fsys fs.FS, dir string) (*Lab, error) {
	p := filepath.ToSlash(filepath.Join(dir, LabFileName))
	data, err := fs.ReadFile(fsys, p)
	if err != nil {
		return nil, err
	}
	return Parse(p, data)
}

// Parse decodes and validates a lab file. file names the source in messages.
// On failure the error is an Errors listing every problem found.
func Parse(file string, data []byte) (*Lab, error) {
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
	d := &decoder{file: file, pos: map[string]Pos{}}
	lab := &Lab{File: file, Source: data}
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
