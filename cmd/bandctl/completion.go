package main

import (
	"fmt"
	"io"
)

const bashCompletion = `# bash completion for bandctl
_bandctl() {
	local cur prev cmds
	cur="${COMP_WORDS[COMP_CWORD]}"
	prev="${COMP_WORDS[COMP_CWORD-1]}"
	cmds="list ban unban status reload test check completion version help"
	if [ "$COMP_CWORD" -eq 1 ]; then
		COMPREPLY=( $(compgen -W "$cmds --socket" -- "$cur") )
		return
	fi
	case "$prev" in
	--config|--socket) COMPREPLY=( $(compgen -f -- "$cur") ); return ;;
	-o) COMPREPLY=( $(compgen -W "text json" -- "$cur") ); return ;;
	--format) COMPREPLY=( $(compgen -W "auto common combined vhost_combined error" -- "$cur") ); return ;;
	completion) COMPREPLY=( $(compgen -W "bash zsh" -- "$cur") ); return ;;
	esac
	case "${COMP_WORDS[1]}" in
	list) COMPREPLY=( $(compgen -W "--jail --addr -o --socket" -- "$cur") ) ;;
	ban) COMPREPLY=( $(compgen -W "--for --jail --reason --force --socket" -- "$cur") ) ;;
	unban) COMPREPLY=( $(compgen -W "--all --jail --socket" -- "$cur") ) ;;
	status) COMPREPLY=( $(compgen -W "-o --socket" -- "$cur") ) ;;
	reload) COMPREPLY=( $(compgen -W "--socket" -- "$cur") ) ;;
	check) COMPREPLY=( $(compgen -W "--config" -- "$cur") ) ;;
	test) COMPREPLY=( $(compgen -W "--config --jail --format --matches -o" -- "$cur") $(compgen -f -- "$cur") ) ;;
	esac
}
complete -F _bandctl bandctl
`

const zshCompletion = `#compdef bandctl
# zsh completion for bandctl
_bandctl() {
	local -a cmds
	cmds=(
		'list:list active bans'
		'ban:ban an address or prefix'
		'unban:lift bans'
		'status:show the daemon, sources and jails'
		'reload:re-read the configuration'
		'test:replay log files through the jails'
		'check:validate a configuration'
		'completion:print a completion script'
		'version:print the version'
		'help:print help'
	)
	if (( CURRENT == 2 )); then
		_describe 'command' cmds
		return
	fi
	case $words[2] in
	list) _arguments '--jail[only this jail]:jail:' '--addr[only this address]:address:' '-o[output]:format:(text json)' '--socket[control socket]:socket:_files' ;;
	ban) _arguments '1:address:' '--for[duration]:duration:' '--jail[jail]:jail:' '--reason[reason]:reason:' '--force[ban even a whitelisted address]' '--socket[control socket]:socket:_files' ;;
	unban) _arguments '*:address:' '--all[every ban]' '--jail[with --all, one jail]:jail:' '--socket[control socket]:socket:_files' ;;
	status) _arguments '1:jail:' '-o[output]:format:(text json)' '--socket[control socket]:socket:_files' ;;
	reload) _arguments '--socket[control socket]:socket:_files' ;;
	check) _arguments '--config[configuration file]:file:_files' ;;
	test) _arguments '*:log file:_files' '--config[configuration file]:file:_files' '*--jail[jail]:jail:' '--format[log format]:format:(auto common combined vhost_combined error)' '--matches[list matching lines]' '-o[output]:format:(text json)' ;;
	completion) _arguments '1:shell:(bash zsh)' ;;
	esac
}
_bandctl "$@"
`

func cmdCompletion(args []string, stdout io.Writer) error {
	if len(args) != 1 {
		return usagef("completion: say bash or zsh")
	}
	switch args[0] {
	case "bash":
		fmt.Fprint(stdout, bashCompletion)
	case "zsh":
		fmt.Fprint(stdout, zshCompletion)
	default:
		return usagef("completion: %q is not bash or zsh", args[0])
	}
	return nil
}
