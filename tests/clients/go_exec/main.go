// A golang.org/x/crypto/ssh client for the interop matrix: see ../README.md.
package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

func fail(what string, err error) {
	fmt.Fprintf(os.Stderr, "x/crypto/ssh: %s: %v\n", what, err)
	os.Exit(2)
}

func main() {
	if len(os.Args) != 7 {
		fmt.Fprintf(os.Stderr, "usage: %s HOST PORT USER KEYFILE FINGERPRINTS COMMAND\n", os.Args[0])
		os.Exit(2)
	}
	host, port, user, keyFile, fingerprints, command := os.Args[1], os.Args[2], os.Args[3], os.Args[4], os.Args[5], os.Args[6]
	pem, err := os.ReadFile(keyFile)
	if err != nil {
		fail("read key", err)
	}
	signer, err := ssh.ParsePrivateKey(pem)
	if err != nil {
		fail("parse key", err)
	}
	config := &ssh.ClientConfig{
		User: user,
		Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: func(_ string, _ net.Addr, key ssh.PublicKey) error {
			fp := ssh.FingerprintSHA256(key)
			for _, want := range strings.Split(fingerprints, ",") {
				if want == fp {
					fmt.Fprintf(os.Stderr, "negotiated: hostkey=%s\n", key.Type())
					return nil
				}
			}
			fmt.Fprintf(os.Stderr, "host key mismatch: %s\n", fp)
			os.Exit(3)
			return nil
		},
		Timeout: 20 * time.Second,
	}
	client, err := ssh.Dial("tcp", net.JoinHostPort(host, port), config)
	if err != nil {
		fail("connect", err)
	}
	session, err := client.NewSession()
	if err != nil {
		fail("open session", err)
	}
	session.Stdin = os.Stdin
	session.Stdout = os.Stdout
	session.Stderr = os.Stderr
	if command == "" {
		err = session.Shell()
		if err == nil {
			err = session.Wait()
		}
	} else {
		err = session.Run(command)
	}
	client.Close()
	var exit *ssh.ExitError
	if errors.As(err, &exit) {
		os.Exit(exit.ExitStatus())
	}
	var missing *ssh.ExitMissingError
	if errors.As(err, &missing) {
		os.Exit(4)
	}
	if err != nil {
		fail("session", err)
	}
}
