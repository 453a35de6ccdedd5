<?xml version="1.0" encoding="utf-8"?>
<CHANNEL HREF="https://almanac.example.test/" BASE="https://almanac.example.test/">
  <TITLE>Harbour Almanac</TITLE>
  <ABSTRACT>Notes from the harbour office</ABSTRACT>
  <ITEM HREF="https://almanac.example.test/notes/lighthouse.html" LASTMOD="2025-02-03T14:00:00-08:00">
    <TITLE>Lighthouse lamp replaced</TITLE>
    <ABSTRACT>The lamp at the east lighthouse was replaced on Monday.</ABSTRACT>
  </ITEM>
</CHANNEL>
