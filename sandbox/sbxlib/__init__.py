"""The sbx rehearsal sandbox: command line, process helpers and the front door proxy."""
