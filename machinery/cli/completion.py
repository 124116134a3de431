"""``machinery completion SHELL``: print the shell completion script (click's own completion)."""

from __future__ import annotations

import click
from click.shell_completion import get_completion_class

SHELLS = ("bash", "zsh", "fish")


@click.command()
@click.argument("shell", type=click.Choice(SHELLS))
@click.pass_context
def completion(ctx: click.Context, shell: str) -> None:
    """Print the completion script for SHELL.

    \b
    bash:  eval "$(machinery completion bash)"    (in ~/.bashrc)
    zsh:   eval "$(machinery completion zsh)"     (in ~/.zshrc)
    fish:  machinery completion fish > ~/.config/fish/completions/machinery.fish
    """
    completer = get_completion_class(shell)
    assert completer is not None  # every name in SHELLS is one of click's
    root = ctx.find_root()
    script = completer(root.command, {}, "machinery", "_MACHINERY_COMPLETE").source()
    click.echo(script)
