package main

import (
	"context"
	"fmt"
	"strings"

	"smessenger/internal/server"
)

type userCmd struct {
	Add   userAddCmd   `cmd:"" help:"Create a user and print a one-time enrolment token for its first device."`
	Token userTokenCmd `cmd:"" help:"Print a new one-time enrolment token for another device of a user."`
	List  userListCmd  `cmd:"" help:"List users, their aliases and devices."`
	Del   userDelCmd   `cmd:"" help:"Delete a user and all its mail."`
}

type userAddCmd struct {
	storeFlags
	Quota   int64  `help:"Quota in bytes (0: unlimited)." default:"0"`
	Address string `arg:"" help:"The user's primary address."`
}

func (c *userAddCmd) Run(g *globals) error {
	ctx := context.Background()
	st, err := c.open(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	_, token, err := server.AddUser(ctx, st, c.Address, c.Quota)
	if err != nil {
		return err
	}
	fmt.Fprintf(g.out, "User %s created.\nEnrolment token (one use, valid 7 days): %s\nOn the user's machine: smessenger bridge login %s --server HOST:PORT --server-key KEY --token %s\n",
		c.Address, token, c.Address, token)
	return nil
}

type userTokenCmd struct {
	storeFlags
	Address string `arg:"" help:"The user's address."`
}

func (c *userTokenCmd) Run(g *globals) error {
	ctx := context.Background()
	st, err := c.open(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	token, err := server.NewEnrolToken(ctx, st, c.Address, 0)
	if err != nil {
		return err
	}
	fmt.Fprintf(g.out, "Enrolment token for a new device of %s: %s\n", c.Address, token)
	return nil
}

type userListCmd struct {
	storeFlags
}

func (c *userListCmd) Run(g *globals) error {
	ctx := context.Background()
	st, err := c.open(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	users, err := server.ListUsers(ctx, st)
	if err != nil {
		return err
	}
	fmt.Fprintf(g.out, "%-32s %-8s %-8s %s\n", "ADDRESS", "KEY", "DEVICES", "ALIASES")
	for _, u := range users {
		live := 0
		for _, d := range u.Devices {
			if !d.Revoked {
				live++
			}
		}
		aliases := ""
		if len(u.Account.Addresses) > 1 {
			aliases = strings.Join(u.Account.Addresses[1:], ",")
		}
		fmt.Fprintf(g.out, "%-32s %-8v %-8d %s\n", u.Account.Primary, u.HasKey, live, aliases)
	}
	return nil
}

type userDelCmd struct {
	storeFlags
	Address string `arg:"" help:"The user's primary address."`
}

func (c *userDelCmd) Run(g *globals) error {
	ctx := context.Background()
	st, err := c.open(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	return server.DeleteUser(ctx, st, c.Address)
}

type aliasCmd struct {
	Add aliasAddCmd `cmd:"" help:"Give a user another address."`
}

type aliasAddCmd struct {
	storeFlags
	Address string `arg:"" help:"The user's primary address."`
	Alias   string `arg:"" help:"The new alias."`
}

func (c *aliasAddCmd) Run(g *globals) error {
	ctx := context.Background()
	st, err := c.open(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	return server.AddAlias(ctx, st, c.Address, c.Alias)
}
