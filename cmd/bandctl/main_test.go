package main

import (
	"os"
	"testing"

	"github.com/band-project/band/internal/cmdtest"
)

func TestMain(m *testing.M) { os.Exit(cmdtest.Main(m)) }
