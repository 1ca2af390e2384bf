# GB/s of minimal traffic against the roofline, one panel per thread count (0% ignored).
# Called by report.py: gnuplot -e "files='a.tsv b.tsv'; threads='1 2'; ntorch=2; out='x.png'"
set terminal pngcairo size 1600,500*words(files) font ",10"
set output out
set datafile separator "\t"
set datafile missing "?"
set multiplot layout words(files),1
set logscale y
set ylabel "GB/s (minimal traffic)"
set grid ytics
set style fill solid 0.25 noborder
set boxwidth 0.8
set xtics rotate by -40 font ",8" nomirror
set key outside right top
set bmargin 9
do for [p=1:words(files)] {
    f = word(files, p)
    set title sprintf("%s thread(s), no ignored targets: bar = roofline, points = measured", word(threads, p))
    plot f using 0:2:xtic(1) with boxes lc rgb "#4060a0" title columnheader(2), \
         f using 0:3 with points pt 7 ps 1.4 lc rgb "#c02020" title columnheader(3), \
         for [k=4:3+ntorch] f using 0:k with points pt k ps 1.2 title columnheader(k)
}
unset multiplot
