"""The file layer: every HDF5 file ei-sim writes, how it is written and how it is opened.

Each file carries the root attributes ``kind`` and ``schema_version`` (an int: 1 for every
layout of this release but the rate-model run's, 2) and is opened through one opener,
:func:`open_kind`, with one message for a missing file or a file of another kind. Files
written before ``kind`` existed are read as today's layout (:func:`kind_of` recognises them
by their groups).

Modules, by what they hold:

- :mod:`~ei_sim.store.atomic`: atomic writing (temporary file, rename; stale temporaries;
  HDF5 files built in memory; free space; one-line errors of a full disk);
- :mod:`~ei_sim.store.attrs`: attributes and provenance;
- :mod:`~ei_sim.store.checksum`: checksums of stored parts (seal, verify);
- :mod:`~ei_sim.store.lock`: one writer per output (an OS lock beside each output);
- :mod:`~ei_sim.store.media`: whether a PNG, MP4, GIF or HTML file is whole;
- :mod:`~ei_sim.store.verify`: checking any file ei-sim writes (``ei-sim verify``);
- :mod:`~ei_sim.store.kinds`: the registry of kinds (:data:`KINDS`) and the opener;
- :mod:`~ei_sim.store.parts`: stores built of finished parts (grid cells, reproduction
  stages): open, check or create, add one part;
- :mod:`~ei_sim.store.run`: the run layout (``run.h5`` of ``ei-sim train``);
- :mod:`~ei_sim.store.snapshot`: the snapshot layout (one epoch's reference trial, inside a
  run file or a grid cell);
- :mod:`~ei_sim.store.spikes`: the spike-list layout of simulate files;
- :mod:`~ei_sim.store.stream`: simulate files, written chunk by chunk while a run goes on.

The layouts of the other kinds live beside their writers and use these helpers: rate-model
runs in :mod:`ei_sim.rate.store`, grid stores and sweep files in :mod:`ei_sim.sweeps.store`,
reproduction stores in :mod:`ei_sim.analysis.reproduce.store`; each package registers its
kinds (:func:`ei_sim.store.kinds.register_kind`).
"""
