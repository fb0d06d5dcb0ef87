"""amzigo-lab: a governed analytics workbench for Amazon sellers."""
