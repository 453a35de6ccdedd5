/*
 * newswire's English token filters for Elasticsearch servers without the analysis-common
 * module (the integ-test distribution the tests and `newswire es start` run).
 *
 * Each factory hands a token stream to the Lucene filter that the full distribution's
 * `english` analyzer uses, so an index built on either server analyses text alike:
 *   newswire_possessive  -> EnglishPossessiveFilter  (stemmer "possessive_english")
 *   newswire_asciifolding -> ASCIIFoldingFilter      (asciifolding)
 *   newswire_porter_stem -> PorterStemFilter         (stemmer "english")
 * Built and installed as a stable plugin by pipeline/esserver.py; the Lucene classes come
 * from the server's own lib/ folder.
 */
package newswire.analysis;

import org.apache.lucene.analysis.TokenStream;
import org.apache.lucene.analysis.en.EnglishPossessiveFilter;
import org.apache.lucene.analysis.en.PorterStemFilter;
import org.apache.lucene.analysis.miscellaneous.ASCIIFoldingFilter;
import org.elasticsearch.plugin.NamedComponent;
import org.elasticsearch.plugin.analysis.TokenFilterFactory;

public final class EnglishFilters {
    private EnglishFilters() {}

    @NamedComponent("newswire_possessive")
    public static final class Possessive implements TokenFilterFactory {
        @Override
        public TokenStream create(TokenStream tokenStream) {
            return new EnglishPossessiveFilter(tokenStream);
        }
    }

    @NamedComponent("newswire_asciifolding")
    public static final class AsciiFolding implements TokenFilterFactory {
        @Override
        public TokenStream create(TokenStream tokenStream) {
            return new ASCIIFoldingFilter(tokenStream);
        }

        @Override // prefix terms of a query (`cafés*`) are folded too, as asciifolding does
        public TokenStream normalize(TokenStream tokenStream) {
            return new ASCIIFoldingFilter(tokenStream);
        }
    }

    @NamedComponent("newswire_porter_stem")
    public static final class PorterStem implements TokenFilterFactory {
        @Override
        public TokenStream create(TokenStream tokenStream) {
            return new PorterStemFilter(tokenStream);
        }
    }
}
