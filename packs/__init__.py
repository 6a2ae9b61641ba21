"""coalition.packs: the domain packs shipped with Coalition (each also registered as a `coalition.packs` entry
point). The core never imports this package; the composition root loads packs through coalition.domain."""
