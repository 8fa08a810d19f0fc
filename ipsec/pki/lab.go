package pki

import (
	"crypto"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Lab is a lab's PKI: one CA and one credential per node, keyed by node name.
type Lab struct {
	CA    *CA
	Nodes map[string]*Credential
}

// The file names in a lab PKI directory. The CA's key is kept so that a
// redeployed lab can issue a certificate for a node added since, under the
// same CA the other nodes already trust.
const (
	CACertFile = "ca.pem"
	CAKeyFile  = "ca.key"
	certSuffix = ".pem"
	keySuffix  = ".key"
)

// Modes: the directory and the keys are the owner's alone, since anyone who
// reads a key can impersonate that node (or, for the CA key, any node);
// certificates are public.
const (
	dirMode  fs.FileMode = 0o700
	keyMode  fs.FileMode = 0o600
	certMode fs.FileMode = 0o644
)

// WriteDir writes the lab PKI into dir: ca.pem, ca.key, and <node>.pem (the
// chain, leaf first) and <node>.key for each node. A Lab whose CA.Key is nil
// writes no ca.key, which is what an export for Wireshark or a real peer
// wants. dir is created with mode 0700 if it does not exist; an existing
// directory keeps its mode. Each file is replaced atomically, so a reader
// never sees half a key. Other files in dir are left alone.
func (l *Lab) WriteDir(dir string) error {
	if l == nil || l.CA == nil || l.CA.Cert == nil {
		return errors.New("pki: the lab PKI has no CA certificate")
	}
	names := make([]string, 0, len(l.Nodes))
	for name, cred := range l.Nodes {
		if err := checkNodeName(name); err != nil {
			return err
		}
		if cred == nil || len(cred.Chain) == 0 || cred.Key == nil {
			return fmt.Errorf("pki: node %s has no certificate or no key", name)
		}
		names = append(names, name)
	}
	sort.Strings(names)

	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, dirMode); err != nil {
			return err
		}
		// MkdirAll's mode passes through the umask; set it exactly.
		if err := os.Chmod(dir, dirMode); err != nil {
			return err
		}
	} else if err != nil {
		return err
	}

	if err := writeFileAtomic(filepath.Join(dir, CACertFile), EncodeCertificatePEM(l.CA.Cert), certMode); err != nil {
		return err
	}
	if l.CA.Key != nil {
		if err := writeKey(filepath.Join(dir, CAKeyFile), l.CA.Key); err != nil {
			return err
		}
	}
	for _, name := range names {
		cred := l.Nodes[name]
		if err := writeFileAtomic(filepath.Join(dir, name+certSuffix), EncodeCertificatesPEM(cred.Chain), certMode); err != nil {
			return err
		}
		if err := writeKey(filepath.Join(dir, name+keySuffix), cred.Key); err != nil {
			return err
		}
	}
	return nil
}

// checkNodeName refuses names that would escape the directory, hide the
// file, or collide with the CA's files.
func checkNodeName(name string) error {
	switch {
	case name == "", strings.ContainsAny(name, `/\`+"\x00"), strings.HasPrefix(name, "."):
		return fmt.Errorf("pki: node name %q cannot name a file", name)
	case name+certSuffix == CACertFile:
		return fmt.Errorf("pki: node name %q collides with the CA's files", name)
	}
	return nil
}

func writeKey(path string, k crypto.Signer) error {
	data, err := EncodePrivateKeyPEM(k)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return writeFileAtomic(path, data, keyMode)
}

// writeFileAtomic writes data to a temporary file in the same directory and
// renames it over path. The temporary file is created 0600, so a key is
// never readable by others even for an instant, then given mode.
func writeFileAtomic(path string, data []byte, mode fs.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(mode)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("pki: writing %s: %w", path, err)
	}
	return nil
}

// ReadLabDir reads what WriteDir wrote. ca.pem is required and ca.key
// optional (an exported directory has none); every other <name>.pem is a
// node and needs its <name>.key, which must match the certificate.
func ReadLabDir(dir string) (*Lab, error) {
	caCerts, err := LoadCertificates(filepath.Join(dir, CACertFile))
	if err != nil {
		return nil, err
	}
	if len(caCerts) != 1 {
		return nil, fmt.Errorf("pki: %s holds %d certificates, not the CA's alone", filepath.Join(dir, CACertFile), len(caCerts))
	}
	lab := &Lab{CA: &CA{Cert: caCerts[0]}, Nodes: map[string]*Credential{}}
	caKeyPath := filepath.Join(dir, CAKeyFile)
	if key, err := LoadPrivateKey(caKeyPath); err == nil {
		if err := KeyMatches(lab.CA.Cert, key); err != nil {
			return nil, fmt.Errorf("%s: %w", caKeyPath, err)
		}
		lab.CA.Key = key
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}

	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), certSuffix)
		if !ok || e.IsDir() || e.Name() == CACertFile || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		chain, err := LoadCertificates(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		keyPath := filepath.Join(dir, name+keySuffix)
		key, err := LoadPrivateKey(keyPath)
		if err != nil {
			return nil, fmt.Errorf("pki: node %s: %w", name, err)
		}
		if err := KeyMatches(chain[0], key); err != nil {
			return nil, fmt.Errorf("%s: %w", keyPath, err)
		}
		lab.Nodes[name] = &Credential{Chain: chain, Key: key}
	}
	return lab, nil
}
