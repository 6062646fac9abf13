package sqlstore

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"sync"

	"github.com/usersync/usersync"
)

// Secret settings (client secrets, API tokens of sources) are sealed
// before they are stored: AES-256-GCM under a key kept outside the
// database, with the setting's name as additional data so a sealed value
// cannot be moved to another setting. The stored form is
//
//	sealed:v1:<key id>:<base64 of nonce and ciphertext>
//
// where the key id (the first 8 hex digits of the key's SHA-256) tells a
// wrong key from a damaged value.

const sealedPrefix = "sealed:v1:"

// KeyEnv and KeyFileEnv are the environment variables the CLI reads the
// secret key from (the key itself, base64; or the path of a key file).
const (
	KeyEnv     = "USERSYNC_SECRET_KEY"
	KeyFileEnv = "USERSYNC_SECRET_KEY_FILE"
)

// secretKey finds, and when asked creates, the key that seals secrets.
type secretKey struct {
	key  []byte // given directly (Options.SecretKey)
	file string // else read from (and made in) this file; "" when none is known
	what string // where the key comes from, for messages

	mu     sync.Mutex
	loaded []byte
}

func newSecretKey(o Options, dl dialect, path string) (*secretKey, error) {
	switch {
	case o.SecretKey != "":
		k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(o.SecretKey))
		if err != nil || len(k) != 32 {
			return nil, usersync.Errorf(usersync.EINVALID, "%s must be 32 bytes in base64 (for example the output of `openssl rand -base64 32`)", KeyEnv)
		}
		return &secretKey{key: k, what: KeyEnv}, nil
	case o.SecretKeyFile != "":
		return &secretKey{file: o.SecretKeyFile, what: "key file " + o.SecretKeyFile}, nil
	case dl.name == "sqlite":
		f := path + ".key"
		return &secretKey{file: f, what: "key file " + f + " (beside the database)"}, nil
	}
	return &secretKey{what: "no key (PostgreSQL directories take theirs from " + KeyEnv + " or " + KeyFileEnv + ")"}, nil
}

// get returns the key; with create, a missing key file is made (0600).
func (k *secretKey) get(create bool) ([]byte, error) {
	if k.key != nil {
		return k.key, nil
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.loaded != nil {
		return k.loaded, nil
	}
	if k.file == "" {
		return nil, usersync.Errorf(usersync.EINVALID, "secret settings need a key to be sealed with, and there is %s", k.what)
	}
	b, err := os.ReadFile(k.file)
	if errors.Is(err, fs.ErrNotExist) && create {
		key := make([]byte, 32)
		rand.Read(key)
		f, err := os.OpenFile(k.file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, usersync.Errorf(usersync.EUNAVAILABLE, "cannot create the secret key file %s: %v", k.file, err)
		}
		_, err = f.WriteString(base64.StdEncoding.EncodeToString(key) + "\n")
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(k.file)
			return nil, usersync.Errorf(usersync.EUNAVAILABLE, "cannot write the secret key file %s: %v", k.file, err)
		}
		k.loaded = key
		return key, nil
	}
	if err != nil {
		return nil, usersync.Errorf(usersync.EINVALID, "cannot read the secret key (%s): %v", k.what, err)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(key) != 32 {
		return nil, usersync.Errorf(usersync.EINVALID, "the secret key file %s does not hold 32 bytes in base64", k.file)
	}
	k.loaded = key
	return key, nil
}

func keyID(key []byte) string {
	sum := sha256.Sum256(key)
	return hex.EncodeToString(sum[:4])
}

// seal returns the stored form of a secret setting's value.
func (k *secretKey) seal(name, value string) (string, error) {
	key, err := k.get(true)
	if err != nil {
		return "", err
	}
	aead, err := newAEAD(key)
	if err != nil {
		return "", err
	}
	nonce := make([]byte, aead.NonceSize())
	rand.Read(nonce)
	ct := aead.Seal(nonce, nonce, []byte(value), []byte(name))
	return sealedPrefix + keyID(key) + ":" + base64.RawStdEncoding.EncodeToString(ct), nil
}

// open returns a secret setting's value from its stored form. A value
// stored before secrets were sealed is returned as it is.
func (k *secretKey) open(name, stored string) (string, error) {
	rest, ok := strings.CutPrefix(stored, sealedPrefix)
	if !ok {
		return stored, nil
	}
	id, body, _ := strings.Cut(rest, ":")
	key, err := k.get(false)
	if err != nil {
		return "", usersync.Errorf(usersync.EINVALID, "setting %s is sealed with a secret key (id %s) that is not available: %s. Give the key the setting was stored with (%s or %s), or set the setting again",
			name, id, usersync.ErrorMessage(err), KeyEnv, KeyFileEnv)
	}
	if keyID(key) != id {
		return "", usersync.Errorf(usersync.EINVALID, "setting %s is sealed with another secret key (id %s) than the one given (%s, id %s). Give the key it was stored with, or set the setting again",
			name, id, k.what, keyID(key))
	}
	aead, err := newAEAD(key)
	if err != nil {
		return "", err
	}
	ct, err := base64.RawStdEncoding.DecodeString(body)
	if err != nil || len(ct) < aead.NonceSize() {
		return "", usersync.Errorf(usersync.EINVALID, "the stored value of setting %s is damaged", name)
	}
	clear, err := aead.Open(nil, ct[:aead.NonceSize()], ct[aead.NonceSize():], []byte(name))
	if err != nil {
		return "", usersync.Errorf(usersync.EINVALID, "the stored value of setting %s is damaged or was not sealed for it", name)
	}
	return string(clear), nil
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("secret key: %w", err)
	}
	return cipher.NewGCM(block)
}
