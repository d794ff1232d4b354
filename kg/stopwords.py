"""Built-in word lists for the linker's filters: English function words and a few common words."""

from __future__ import annotations


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Never a concept label on their own (HPO even has a term named "All").
STOPWORDS = _words(
    """
    a about above after again against all also am an and any are as at be because been before being below between
    both but by can could did do does doing down during each either else ever every few for from further had has
    have having he her here hers him his how however i if in into is it its itself just least less may me might
    more most much must my neither no nor not now of off on once one only or other our ours out over own per same
    shall she should so some such than that the their theirs them then there these they this those though through
    to too under until up upon us very via was we were what when where whether which while who whom whose why will
    with within without would yet you your
    """
)

# Used for the ambiguity filter when no WordNet lemma list is given: short common words that are also gene
# symbols or abbreviations in biomedical graphs.
COMMON_WORDS = STOPWORDS | _words(
    """
    ace act age aid aim air arm art bad bag bar bat bed big bit box boy car cat cell cut day dog ear end eye fat fit
    gas gene hat hit hot ice key kit lab lay led leg let lie low mad man map max men met mix net new old pan pat pet
    pin pop pot put ran rat raw red rest rod run sad sat saw sea see set sex sit six sky son spot sun tag tan tea ten
    tie tip toe top two use van war way wet win yes
    """
)
