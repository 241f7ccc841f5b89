//go:build !race

package user

const raceEnabled = false
