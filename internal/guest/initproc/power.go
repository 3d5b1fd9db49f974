package initproc

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"time"
)

// The power button arrives as a Linux input event (struct input_event on
// amd64: a 16-byte timeval, then type, code and value) from the ACPI button
// driver through evdev.
const (
	inputEventSize = 24
	evKey          = 1   // EV_KEY
	keyPower       = 116 // KEY_POWER
	keyPressed     = 1
)

// InputWait bounds the wait for the /dev node of an input device that
// sysfs already lists (devtmpfs adds nodes a moment after the device).
const InputWait = 2 * time.Second

// watchPowerButton reads every input device and sends on pressed (without
// blocking; pressed should have room for one) each time the power key goes
// down. The host presses it with QMP's system_powerdown.
func watchPowerButton(log *console, pressed chan<- struct{}) {
	names, _ := filepath.Glob("/sys/class/input/event*")
	if len(names) == 0 {
		log.printf("no input devices: the ACPI power button will not stop the entrypoint")
		return
	}
	for _, n := range names {
		dev := filepath.Join("/dev/input", filepath.Base(n))
		if err := waitFor(dev, InputWait); err != nil {
			log.printf("input device %s: %v", dev, err)
			continue
		}
		f, err := os.Open(dev)
		if err != nil {
			log.printf("input device %s: %v", dev, err)
			continue
		}
		go readPowerKey(f, pressed)
	}
}

func readPowerKey(f *os.File, pressed chan<- struct{}) {
	defer f.Close()
	buf := make([]byte, inputEventSize*64)
	for {
		n, err := f.Read(buf)
		if err != nil {
			return
		}
		if powerKeyDown(buf[:n]) {
			select {
			case pressed <- struct{}{}:
			default:
			}
		}
	}
}

// powerKeyDown reports whether events (whole input_event records) hold a
// press of the power key.
func powerKeyDown(events []byte) bool {
	for ; len(events) >= inputEventSize; events = events[inputEventSize:] {
		typ := binary.LittleEndian.Uint16(events[16:18])
		code := binary.LittleEndian.Uint16(events[18:20])
		value := int32(binary.LittleEndian.Uint32(events[20:24]))
		if typ == evKey && code == keyPower && value == keyPressed {
			return true
		}
	}
	return false
}
