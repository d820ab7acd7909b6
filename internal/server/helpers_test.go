package server_test

import (
	"smessenger/internal/store"
	"smessenger/internal/store/bolt"
)

func openBoltAt(path string) (store.Store, error) { return bolt.Open(path, bolt.Options{}) }
