"""What the tests share: the live app in a subprocess, a local hub, the browser, recorded machines, the test models
built here, and the data and checks several test modules use. Test modules import from here, never from each
other."""
