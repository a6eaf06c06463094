r"""Variants as QTI 1.2 in the package Canvas imports: one quiz per variant.

A Canvas quiz holds numbers that belong together only within one quiz (a
question group draws its questions independently), so each variant is its
own quiz, to be assigned to the students ``roster.csv`` deals it to. The
zip holds ``imsmanifest.xml`` (IMS Content Packaging 1.1 as Canvas writes
it) and, per quiz ``ID``, ``ID/ID.xml`` (the QTI 1.2 ``questestinterop``
assessment) and ``ID/assessment_meta.xml`` (Canvas's quiz settings). The
first item of a quiz is the statement (``text_only_question``); every asked
number is a ``numerical_question`` accepting the key's value within the
grading policy's tolerance (``varequal`` for the exact value, or
``vargte``/``varlte`` around it), with the right value as its feedback.
Maths is HTML with ``\(...\)``, which Canvas typesets.

Why not ``text2qti`` (the usual Python tool): it writes one quiz per zip,
refuses an answer of magnitude below 1e-4 (a gradient of 0 or 5e-5 is a
right answer here) and writes the accepted range to four decimals, which
would turn 0.621467 +- 6e-7 into [0.6215, 0.6215] and mark the right answer
wrong; its maths needs a Canvas server's equation-image address or Pandoc.

>>> from derive.problems import load
>>> from derive.document.variants import draw_variants
>>> from derive.export import Policy, collect
>>> p = load("mlp-relu-regression")
>>> items = collect(p, draw_variants(p, 2, seed=3), seed=3, policy=Policy(1e-3, 1e-9))
>>> import io, zipfile
>>> sorted(zipfile.ZipFile(io.BytesIO(qti_zip(p, items, 3, Policy(1e-3, 1e-9)))).namelist())[-1]
'imsmanifest.xml'
"""
from __future__ import annotations

import hashlib
import io
import zipfile

from lxml import etree

from derive.export.html import blocks_html, mathjax, text

QTI_NS = "http://www.imsglobal.org/xsd/ims_qtiasiv1p2"
QTI_XSD = "http://www.imsglobal.org/xsd/ims_qtiasiv1p2p1.xsd"
CP_NS = "http://www.imsglobal.org/xsd/imsccv1p1/imscp_v1p1"
IMSMD_NS = "http://www.imsglobal.org/xsd/imsmd_v1p2"
CANVAS_NS = "http://canvas.instructure.com/xsd/cccv1p0"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
#: the resource types Canvas reads in a manifest
ASSESSMENT_TYPE = "imsqti_xmlv1p2"
META_TYPE = "associatedcontent/imscc_xmlv1p1/learning-application-resource"
#: zip entries carry this date, so the same variants give the same bytes
ZIP_DATE = (1980, 1, 1, 0, 0, 0)


def ident(*parts) -> str:
    """A stable identifier (a letter, then hex) from ``parts``.

    >>> a = ident("mlp-relu-regression", 3, 1)
    >>> len(a), a[0], a == ident("mlp-relu-regression", 3, 1) != ident("mlp-relu-regression", 3, 2)
    (33, 'g', True)
    """
    return "g" + hashlib.sha256(":".join(map(str, parts)).encode()).hexdigest()[:32]


def _num(x: float) -> str:
    return repr(float(x))


def _sub(parent, tag, text_=None, ns=QTI_NS, **attrib):
    el = etree.SubElement(parent, f"{{{ns}}}{tag}", **attrib)
    if text_ is not None:
        el.text = text_
    return el


def _metadata(item, fields: dict):
    meta = _sub(_sub(item, "itemmetadata"), "qtimetadata")
    for label, entry in fields.items():
        f = _sub(meta, "qtimetadatafield")
        _sub(f, "fieldlabel", label)
        _sub(f, "fieldentry", entry)


def _material(parent, html: str):
    _sub(_sub(parent, "material"), "mattext", html, texttype="text/html")


def _statement_item(section, item_id: str, html: str):
    item = _sub(section, "item", ident=item_id, title="Problem statement")
    _metadata(item, {"question_type": "text_only_question", "points_possible": "0"})
    _material(_sub(item, "presentation"), html)


def _numerical_item(section, item_id: str, q):
    item = _sub(section, "item", ident=item_id, title=q.name)
    _metadata(item, {"question_type": "numerical_question", "points_possible": "1.0"})
    pres = _sub(item, "presentation")
    _material(pres, f"<p>{mathjax(q.tex)}</p>")
    fib = _sub(_sub(pres, "response_str", ident="response1", rcardinality="Single"), "render_fib",
               fibtype="Decimal")
    _sub(fib, "response_label", ident="answer1")
    proc = _sub(item, "resprocessing")
    _sub(_sub(proc, "outcomes"), "decvar", maxvalue="100", minvalue="0", varname="SCORE", vartype="Decimal")
    general = _sub(proc, "respcondition", **{"continue": "Yes"})
    _sub(_sub(general, "conditionvar"), "other")
    _sub(general, "displayfeedback", feedbacktype="Response", linkrefid="general_fb")
    right = _sub(proc, "respcondition", **{"continue": "No"})
    either = _sub(_sub(right, "conditionvar"), "or")
    _sub(either, "varequal", _num(q.value), respident="response1")
    within = _sub(either, "and")
    _sub(within, "vargte", _num(q.value - q.tolerance), respident="response1")
    _sub(within, "varlte", _num(q.value + q.tolerance), respident="response1")
    _sub(right, "setvar", "100", action="Set", varname="SCORE")
    fb = _sub(item, "itemfeedback", ident="general_fb")
    _material(_sub(fb, "flow_mat"),
              f"<p>Right value: {mathjax(q.tex)} = {text(repr(q.value))} "
              f"(accepted within {text(f'{q.tolerance:.3g}')}).</p>")


def assessment_xml(quiz_id: str, title: str, item, policy) -> bytes:
    """The QTI 1.2 assessment of one variant."""
    root = etree.Element(f"{{{QTI_NS}}}questestinterop", nsmap={None: QTI_NS, "xsi": XSI_NS})
    root.set(f"{{{XSI_NS}}}schemaLocation", f"{QTI_NS} {QTI_XSD}")
    assessment = _sub(root, "assessment", ident=quiz_id, title=title)
    meta = _sub(assessment, "qtimetadata")
    f = _sub(meta, "qtimetadatafield")
    _sub(f, "fieldlabel", "cc_maxattempts")
    _sub(f, "fieldentry", "1")
    section = _sub(assessment, "section", ident="root_section")
    statement = blocks_html(item.statement) + f"\n<p>{text(policy.note())}</p>"
    _statement_item(section, ident(quiz_id, "statement"), statement)
    for q in item.quantities:
        _numerical_item(section, ident(quiz_id, q.name), q)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def assessment_meta(quiz_id: str, title: str, description: str, points: int) -> bytes:
    """Canvas's settings of one quiz (``assessment_meta.xml``)."""
    root = etree.Element(f"{{{CANVAS_NS}}}quiz", nsmap={None: CANVAS_NS}, identifier=quiz_id)
    fields = [("title", title), ("description", description), ("shuffle_answers", "false"),
              ("scoring_policy", "keep_highest"), ("quiz_type", "assignment"),
              ("points_possible", f"{points:.1f}"), ("show_correct_answers", "true"),
              ("allowed_attempts", "1"), ("one_question_at_a_time", "false"), ("cant_go_back", "false"),
              ("available", "false")]
    for tag, value in fields:
        _sub(root, tag, value, ns=CANVAS_NS)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def manifest_xml(manifest_id: str, title: str, quiz_ids: list) -> bytes:
    """``imsmanifest.xml``: each quiz a resource with its settings file as a dependency."""
    root = etree.Element(f"{{{CP_NS}}}manifest", nsmap={None: CP_NS, "imsmd": IMSMD_NS, "xsi": XSI_NS},
                         identifier=manifest_id)
    meta = _sub(root, "metadata", ns=CP_NS)
    _sub(meta, "schema", "IMS Content", ns=CP_NS)
    _sub(meta, "schemaversion", "1.1.3", ns=CP_NS)
    lom_title = _sub(_sub(_sub(meta, "lom", ns=IMSMD_NS), "general", ns=IMSMD_NS), "title", ns=IMSMD_NS)
    _sub(lom_title, "string", title, ns=IMSMD_NS)
    _sub(root, "organizations", ns=CP_NS)
    resources = _sub(root, "resources", ns=CP_NS)
    for quiz_id in quiz_ids:
        dep = ident(quiz_id, "meta")
        res = _sub(resources, "resource", ns=CP_NS, identifier=quiz_id, type=ASSESSMENT_TYPE)
        _sub(res, "file", ns=CP_NS, href=f"{quiz_id}/{quiz_id}.xml")
        _sub(res, "dependency", ns=CP_NS, identifierref=dep)
        meta_res = _sub(resources, "resource", ns=CP_NS, identifier=dep, type=META_TYPE,
                        href=f"{quiz_id}/assessment_meta.xml")
        _sub(meta_res, "file", ns=CP_NS, href=f"{quiz_id}/assessment_meta.xml")
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def qti_zip(problem, items: list, seed: int, policy) -> bytes:
    """The zip Canvas imports ("QTI .zip file"): one quiz per variant."""
    title = problem.title or problem.id
    files: dict = {}
    quiz_ids = []
    for item in items:
        quiz_id = ident(problem.id, seed, item.number)
        quiz_ids.append(quiz_id)
        quiz_title = f"{title}, variant {item.number:02d}"
        files[f"{quiz_id}/{quiz_id}.xml"] = assessment_xml(quiz_id, quiz_title, item, policy)
        files[f"{quiz_id}/assessment_meta.xml"] = assessment_meta(
            quiz_id, quiz_title, blocks_html(item.statement), len(item.quantities))
    files["imsmanifest.xml"] = manifest_xml(ident(problem.id, seed, "manifest"), title, quiz_ids)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, data)
    return buf.getvalue()
