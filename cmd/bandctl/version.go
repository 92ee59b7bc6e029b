package main

import "github.com/band-project/band/buildinfo"

func version() string { return buildinfo.Version() }
