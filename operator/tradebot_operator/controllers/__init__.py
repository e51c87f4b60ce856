"""The controllers, one package per concern: what a pass over an object does (reads the
indexes, validates through checks/, applies through kube/, talks to Vault through
services/), with no kopf in them; handlers/ only registers them with kopf."""
