"""Speech Commands Lab. Start with: streamlit run app.py"""
import streamlit as st

st.set_page_config(page_title="Speech Commands Lab", page_icon="🎙️", layout="wide")
PAGES = [("app_pages/home.py", "Home"), ("app_pages/1_Waveform.py", "Waveform"),
         ("app_pages/2_Fourier_transform.py", "Fourier transform"), ("app_pages/3_Spectrogram.py", "Spectrogram"),
         ("app_pages/4_Mel_filter_bank.py", "Mel filter bank"), ("app_pages/5_Dataset.py", "Dataset"),
         ("app_pages/6_Results.py", "Results"), ("app_pages/7_Live_prediction.py", "Live prediction"),
         ("app_pages/8_Word_spotting.py", "Word spotting"), ("app_pages/9_Your_own_words.py", "Your own words")]
navigation = st.navigation([st.Page(path, title=title, default=i == 0,
                                    url_path=None if i == 0 else title.replace(" ", "_"))
                            for i, (path, title) in enumerate(PAGES)])
navigation.run()
