module github.com/orphand/orphand

go 1.26.0

require (
	github.com/BurntSushi/toml v1.6.0
	github.com/coreos/go-systemd/v22 v22.7.0
	github.com/godbus/dbus/v5 v5.2.4
	github.com/moby/sys/mountinfo v0.7.2
	go.uber.org/goleak v1.3.0
	golang.org/x/sys v0.49.0
)

require github.com/stretchr/testify v1.8.4 // indirect
