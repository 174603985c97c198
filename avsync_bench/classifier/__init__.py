"""The AV-sync classifier as a first-class part: training (:mod:`.train`), its offset-accuracy
evaluation (:mod:`.eval`) and the metric-validity test of RelSync (:mod:`.sensitivity`).

See PROTOCOL.md §3 and ``docs/classifier.md``.
"""
