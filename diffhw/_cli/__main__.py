from ._main import console

console()
